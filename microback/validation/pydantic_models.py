"""pydantic v2 models as declared input (the ``microback[pydantic]`` extra).

Imported only for a handler whose declared type holds a pydantic model, so an app without
pydantic pays nothing. The JSON is parsed by msgspec first, as for any body, so malformed
JSON, NaN, Infinity, lone surrogates and integers past 64 bits are refused the same way;
pydantic then validates the plain values (its lax mode: ``"3"`` is ``3`` in a query) and
reports every invalid field, each turned into a :class:`FieldError`. Unknown fields follow
the model's own ``model_config`` (``extra="forbid"`` refuses them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import pydantic

from ..http import Request
from ..http.problem import FieldError, Location, Problem
from .body import json_data, raw_json, refuse_repeated_keys
from .collect import MAX_ERRORS, Collector, failed, past_64_bits

__all__ = ["PydanticBody", "converter"]

_CODES = {
    "missing": "missing",
    "extra_forbidden": "unknown_field",
    "string_too_short": "length",
    "string_too_long": "length",
    "too_short": "length",
    "too_long": "length",
    "string_pattern_mismatch": "pattern",
    "enum": "enum",
    "literal_error": "enum",
    "greater_than": "range",
    "greater_than_equal": "range",
    "less_than": "range",
    "less_than_equal": "range",
    "multiple_of": "multiple_of",
}


def _code(kind: str) -> str:
    if kind in _CODES:
        return _CODES[kind]
    if kind.startswith(("int_", "float_", "bool_")):
        return "type"  # as msgspec says of "ten" for an int: not a number at all
    if kind.endswith("_parsing"):
        return "format"
    return "type" if kind.endswith("_type") else "invalid"


def field_errors(error: pydantic.ValidationError, location: Location) -> list[FieldError]:
    """pydantic's errors as ours: its ``loc`` is the path, its ``msg`` the message."""
    return [
        FieldError(location, tuple(item["loc"]), item["msg"], _code(item["type"]))
        for item in error.errors(include_url=False)[:MAX_ERRORS]
    ]


def converter(annotation: Any, location: Location) -> Callable[[Any], Any]:
    """Validate plain values against ``annotation``; a :class:`Problem` 422 listing every
    invalid field when they do not fit."""
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)

    def convert(raw: Any) -> Any:
        try:
            return adapter.validate_python(raw)
        except pydantic.ValidationError as exc:
            raise Problem(422, "invalid", field_errors(exc, location)) from None

    return convert


@dataclasses.dataclass(frozen=True)
class PydanticBody:
    name: str
    type: Any
    convert: Callable[[Any], Any]

    location: ClassVar[Location] = "body"

    def read(self, request: Request) -> Any:
        data = json_data(request)
        raw = raw_json(data)
        refuse_repeated_keys(data)
        collector = Collector(False)
        past_64_bits(raw, (), collector)
        try:
            value = self.convert(raw)
        except Problem as problem:
            collector.errors.extend(problem.errors)
        if collector.errors:
            raise failed(collector.errors[:MAX_ERRORS])
        return value
