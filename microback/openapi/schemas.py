"""JSON Schemas for the OpenAPI document: declared types, path converters, problem details.

Declared types go through ``msgspec.json.schema_components`` all at once, so a model used by
several routes is one component, referred to as ``#/components/schemas/<Name>``; the schema
is the one msgspec validates with. Path values get the schema of their werkzeug converter.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from werkzeug.routing.converters import (
    AnyConverter,
    FloatConverter,
    NumberConverter,
    PathConverter,
    UnicodeConverter,
    UUIDConverter,
)

from ..routing import BaseConverter
from ..validation import models_in
from ..validation.model import is_pydantic, strip

__all__ = ["PROBLEM_SCHEMAS", "REF", "TypeSchemas", "converter_schema"]

REF = "#/components/schemas/{name}"

#: The problem document of every error (RFC 9457), and one invalid field of it.
PROBLEM_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "description": "An error, as RFC 9457 problem details (application/problem+json).",
        "type": "object",
        "properties": {
            "type": {"type": "string", "description": "A URI naming the kind of problem."},
            "title": {
                "type": "string",
                "description": "The status's phrase, such as 'Not Found'.",
            },
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "What went wrong and how to fix it."},
            "errors": {
                "type": "array",
                "description": "One entry per invalid field (422).",
                "items": {"$ref": REF.format(name="FieldError")},
            },
        },
        "required": ["type", "title", "status", "detail"],
    },
    "FieldError": {
        "title": "FieldError",
        "type": "object",
        "properties": {
            "location": {"enum": ["body", "query", "path", "header", "form"]},
            "path": {
                "type": "array",
                "description": "Keys and indexes from the location to the field.",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "message": {"type": "string", "description": "What is wrong, for a person."},
            "code": {"type": "string", "description": "What is wrong, for a program."},
        },
        "required": ["location", "path", "message", "code"],
    },
}


class TypeSchemas:
    """Collects the declared types, then gives the schema of each once all are known."""

    def __init__(self) -> None:
        self._types: list[Any] = []
        self._bodies: list[int] = []
        self._body_models: list[type] = []
        self._closed: list[type] = []
        self._pydantic: dict[int, Any] = {}  # pydantic models describe themselves
        self._schemas: tuple[dict[str, Any], ...] = ()
        self.components: dict[str, Any] = {}

    def add(self, annotation: Any, *, body: bool = False, closed: bool = False) -> int:
        """Take ``annotation``; give its number. ``body``: a JSON body, whose integers must fit
        64 bits; ``closed``: its models refuse unknown fields."""
        self._types.append(annotation)
        number = len(self._types) - 1
        base = strip(annotation)[0]
        if is_pydantic(base):
            self._pydantic[number] = base
        if body:
            self._bodies.append(number)
            self._body_models.extend(models_in(annotation))
        if closed:
            self._closed.extend(models_in(annotation))
        return number

    def resolve(self) -> None:
        """Make every schema, in one pass so that shared models are shared components."""
        # A type msgspec cannot describe (a field of a custom class) is any value.
        described = [
            number not in self._pydantic and _describable(kind)
            for number, kind in enumerate(self._types)
        ]
        made, components = msgspec.json.schema_components(
            [kind for kind, ok in zip(self._types, described, strict=True) if ok],
            ref_template=REF,
        )
        found = iter(made)
        schemas = [next(found) if ok else {} for ok in described]
        for number, model in self._pydantic.items():
            schemas[number] = _pydantic_schema(model, components)
        self._schemas = tuple(schemas)
        for model in self._closed:
            component = components.get(model.__name__)
            if isinstance(component, dict) and component.get("type") == "object":
                component["additionalProperties"] = False
        bodies: list[Any] = [schemas[number] for number in self._bodies]
        bodies += [components.get(model.__name__) for model in self._body_models]
        for schema in bodies:
            _bound_integers(schema)
        self.components = components

    def schema(self, number: int) -> dict[str, Any]:
        """The schema of the type numbered ``number`` by :meth:`add`."""
        return self._schemas[number]

    def component(self, number: int) -> dict[str, Any]:
        """The schema of the type numbered ``number``, its component if it has one."""
        schema = self._schemas[number]
        ref = schema.get("$ref", "")
        if ref.startswith(REF.format(name="")):
            found: dict[str, Any] = self.components[ref.rsplit("/", 1)[1]]
            return found
        return schema

    def properties(self, number: int) -> dict[str, Any]:
        """The schema of each field of a model, by its name (a query model's parameters)."""
        return dict(self.component(number).get("properties", {}))


_INT64 = {"minimum": -(2**63), "maximum": 2**63 - 1}


def _bound_integers(schema: Any) -> None:
    """Give each integer of a body schema the 64-bit range the body's check refuses beyond."""
    if isinstance(schema, dict):
        if schema.get("type") == "integer":
            if "minimum" not in schema and "exclusiveMinimum" not in schema:
                schema["minimum"] = _INT64["minimum"]
            if "maximum" not in schema and "exclusiveMaximum" not in schema:
                schema["maximum"] = _INT64["maximum"]
        for value in schema.values():
            _bound_integers(value)
    elif isinstance(schema, list):
        for item in schema:
            _bound_integers(item)


def _pydantic_schema(model: Any, components: dict[str, Any]) -> dict[str, Any]:
    """A pydantic model's own JSON Schema, its models added to ``components``; its ref."""
    schema = model.model_json_schema(ref_template=REF.replace("{name}", "{model}"))
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(name=model.__name__)}


def _describable(annotation: Any) -> bool:
    try:
        msgspec.json.schema(annotation)
    except TypeError:
        return False
    return True


# UnicodeConverter keeps only its regex: "[^/]{1,}", "[^/]{2,8}" or "[^/]{4}".
_LENGTHS = re.compile(r"\[\^/\]\{(?P<low>\d+)(?P<comma>,?)(?P<high>\d*)\}")


def converter_schema(converter: BaseConverter) -> dict[str, Any]:
    """The schema of a path value, from its werkzeug converter; a custom one is a string."""
    if isinstance(converter, NumberConverter):
        kind = "number" if isinstance(converter, FloatConverter) else "integer"
        schema: dict[str, Any] = {"type": kind}
        low = converter.min
        if not converter.signed and (low is None or low < 0):
            low = 0  # an unsigned converter matches no "-"
        if low is not None:
            schema["minimum"] = low
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    if isinstance(converter, UUIDConverter):
        return {"type": "string", "format": "uuid"}
    if isinstance(converter, AnyConverter):
        return {"type": "string", "enum": sorted(converter.items)}
    if isinstance(converter, PathConverter):
        return {"type": "string"}
    if type(converter) is UnicodeConverter:
        found = _LENGTHS.fullmatch(converter.regex)
        if found is not None:
            schema = {"type": "string", "pattern": "^[^/]*$", "minLength": int(found["low"])}
            high = found["high"] or (None if found["comma"] else found["low"])
            if high is not None:
                schema["maxLength"] = int(high)
            return schema
    return {"type": "string"}
