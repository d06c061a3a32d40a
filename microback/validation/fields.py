"""Declared query parameters, form fields and headers: a model whose fields are read by name
from ``request.args``, ``request.form`` or ``request.headers``.

All three arrive as text, so values are converted to the declared types (msgspec's
``strict=False``: ``"3"`` to ``3``, ``"true"`` to ``True``), and a field typed as a list takes
every value of a repeated name. Unknown query parameters and form fields are refused by
default; unknown headers never are.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

import msgspec
from werkzeug.datastructures import Headers, MultiDict

from ..http import Request
from ..http.problem import Location, Problem
from .collect import Collector, failed
from .model import Field, Form, Header, Query, fields, strip

__all__ = ["FieldsInput", "fields_input", "header_name"]

_MANY = (list, set, frozenset, tuple)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

Source = MultiDict[str, str] | Headers
Convert = Callable[[dict[str, Any]], Any]


@dataclasses.dataclass(frozen=True)
class FieldsInput:
    name: str
    type: Any
    location: Location
    # Each field: the name it is read by, its key in the model, whether it takes a list.
    fields: tuple[tuple[str, str, bool], ...]
    forbid_unknown: bool
    ignore: frozenset[str]
    convert: Convert | None  # pydantic's validation, which raises the 422; None: msgspec's

    def read(self, request: Request) -> Any:
        source = self._source(request)
        raw: dict[str, Any] = {}
        for name, key, many in self.fields:
            if name not in source:
                continue
            if not many:
                raw[key] = source[name]
            elif self.location == "header":
                # WSGI joins a repeated header with commas, the list syntax of RFC 9110.
                raw[key] = [part.strip() for part in source[name].split(",") if part.strip()]
            else:
                raw[key] = source.getlist(name)
        collector = Collector(self.forbid_unknown, self.location, strict=False)
        if self.forbid_unknown:
            known = {name for name, _, _ in self.fields} | self.ignore
            what = "query parameter" if self.location == "query" else "form field"
            for key in source.keys():  # noqa: SIM118 - a MultiDict's keys, each once
                if key not in known:
                    collector.add((key,), f"unknown {what}: remove it", "unknown_field")
        value = None
        try:
            if self.convert is not None:
                value = self.convert(raw)
            else:
                value = msgspec.convert(raw, self.type, strict=False)
        except msgspec.ValidationError:
            collector.walk(raw, self.type, ())
        except Problem as problem:
            collector.errors.extend(problem.errors)
        if collector.errors:
            names = {key: name for name, key, _ in self.fields}
            errors = [
                error._replace(path=(names.get(error.path[0], error.path[0]), *error.path[1:]))
                if error.path and isinstance(error.path[0], str)
                else error
                for error in collector.errors
            ]
            raise failed(errors, _WHAT[self.location])
        return value

    def _source(self, request: Request) -> Source:
        if self.location == "query":
            return request.args
        if self.location == "header":
            return request.headers
        if request.mimetype in _FORM_TYPES:
            return request.form
        if not request.mimetype and not request.get_data(cache=True):
            return MultiDict()  # no body at all: every required field is missing (422)
        got = repr(request.mimetype) if request.mimetype else "no Content-Type"
        raise Problem(
            415,
            "expected a form body with Content-Type: application/x-www-form-urlencoded or "
            f"multipart/form-data, got {got}",
        )


_WHAT: dict[str, str] = {
    "query": "the query string does",
    "form": "the form does",
    "header": "the request headers do",
}


def _takes_list(field: Field) -> bool:
    return typing.get_origin(strip(field.type)[0]) in _MANY


def header_name(field: str) -> str:
    """The header a field of a header model reads: ``x_api_version`` reads ``x-api-version``
    (a field name cannot hold a hyphen; header names are case-insensitive)."""
    return field.replace("_", "-").lower()


def fields_input(
    name: str, annotation: Any, marker: Query | Form | Header, convert: Convert | None
) -> FieldsInput:
    """The reader of a query, form or header model (its fields read now, once)."""
    declared = fields(strip(annotation)[0])
    if isinstance(marker, Header):
        read = tuple(
            (header_name(field.wire_name), field.wire_name, _takes_list(field))
            for field in declared
        )
        return FieldsInput(name, annotation, "header", read, False, frozenset(), convert)
    location: Location = "query" if isinstance(marker, Query) else "form"
    ignore = frozenset(marker.ignore) if isinstance(marker, Form) else frozenset()
    read = tuple((field.wire_name, field.wire_name, _takes_list(field)) for field in declared)
    return FieldsInput(
        name, annotation, location, read, marker.forbid_unknown_fields, ignore, convert
    )
