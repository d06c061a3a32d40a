"""Declared input: a handler parameter annotated with a type receives the JSON body, validated.

``def create(request, note: NewNote)`` is enough: at registration (once, not per request) the
handler's signature is read, and a parameter whose type is a dataclass, a ``TypedDict`` or a
``msgspec.Struct`` (or any type marked ``Annotated[T, Body()]``) is filled from the body.
Handlers without such a parameter are registered unchanged and cost what they cost before.

msgspec decodes and validates valid input in one C pass. It stops at the first error, and a
client should learn every mistake at once, so when that pass fails a second, slower one walks
the raw JSON along the declared type and converts each field on its own with
``msgspec.convert``, which collects one :class:`FieldError` per invalid field (422). Unknown
fields are refused by default (``Body(forbid_unknown_fields=False)`` accepts them);
msgspec ignores them in dataclasses and ``TypedDict`` bodies, so those take that walk on the
raw JSON for valid input too. Malformed JSON stays a 400.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import types
import typing
from collections.abc import Iterable
from typing import Annotated, Any, NamedTuple, Union

import msgspec

from .http import Request
from .http.problem import FieldError, Location, Problem

__all__ = ["MAX_ERRORS", "Body", "Query", "declared_input", "models_in", "with_declared_input"]

#: At most this many invalid fields are listed: a huge array of wrong items is one response.
MAX_ERRORS = 100

Path = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Body:
    """Marks a parameter as the JSON body, for a type that is not a model (``list[Item]``),
    or to accept unknown fields: ``Annotated[Note, Body(forbid_unknown_fields=False)]``."""

    forbid_unknown_fields: bool = True


@dataclasses.dataclass(frozen=True)
class Query:
    """Marks a parameter as the query string, for a model whose fields are its parameters:
    ``filters: Annotated[Filters, Query()]``. A field typed as a list takes every value of
    a repeated parameter (``?tag=a&tag=b``); text is converted to the declared types."""

    forbid_unknown_fields: bool = True


class _Field(NamedTuple):
    wire_name: str
    type: Any
    required: bool


def _strip(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[T, *meta]`` as ``(T, meta)``; another type as ``(type, ())``."""
    if typing.get_origin(annotation) is Annotated:
        return annotation.__origin__, annotation.__metadata__
    return annotation, ()


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and (
        issubclass(annotation, msgspec.Struct)
        or dataclasses.is_dataclass(annotation)
        or typing.is_typeddict(annotation)
    )


@functools.cache
def _fields(model: type) -> tuple[_Field, ...]:
    """The fields of a model as they appear in JSON, with their declared types."""
    hints = typing.get_type_hints(model, include_extras=True)
    if issubclass(model, msgspec.Struct):
        names = model.__struct_fields__
        wire = model.__struct_encode_fields__
        first_default = len(names) - len(model.__struct_defaults__)
        return tuple(
            _Field(wire[i], hints[name], i < first_default) for i, name in enumerate(names)
        )
    if dataclasses.is_dataclass(model):
        return tuple(
            _Field(
                field.name,
                hints[field.name],
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING,
            )
            for field in dataclasses.fields(model)
            if field.init
        )
    required = model.__required_keys__  # type: ignore[attr-defined]
    return tuple(_Field(name, kind, name in required) for name, kind in hints.items())


def _refuses_unknown(model: type, forbid: bool) -> bool:
    config = getattr(model, "__struct_config__", None)
    return forbid or bool(config is not None and config.forbid_unknown_fields)


def _children(annotation: Any) -> Iterable[Any]:
    base, _ = _strip(annotation)
    if _is_model(base):
        return [field.type for field in _fields(base)]
    return [arg for arg in typing.get_args(base) if arg is not Ellipsis]


def models_in(annotation: Any) -> list[type]:
    """Every model in a declared type, its fields read now: a type's annotations can only
    be resolved while its module is loaded, and a request must not be where that fails."""
    found: list[type] = []
    seen: set[int] = set()
    stack = [annotation]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        base, _ = _strip(current)
        if _is_model(base):
            found.append(base)
        stack.extend(_children(current))
    return found


# msgspec's error: "Expected `str` of length >= 1 - at `$.items[2].title`".
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\.(?P<key>[^.\[]+)|\[(?P<index>\d+)\]|\[(?P<quoted>[^\]]*)\]")
_CODES = (
    ("Object missing required field", "missing"),
    ("unknown field", "unknown_field"),
    ("of length", "length"),
    ("matching regex", "pattern"),
    ("Invalid enum value", "enum"),
    ("Expected `int` >", "range"),
    ("Expected `int` <", "range"),
    ("Expected `float` >", "range"),
    ("Expected `float` <", "range"),
    ("Expected `decimal` >", "range"),
    ("Expected `decimal` <", "range"),
    ("multiple of", "multiple_of"),
    ("Invalid RFC3339", "format"),
    ("Invalid", "format"),
    ("Expected", "type"),
)


def _split(error: msgspec.ValidationError) -> tuple[str, Path]:
    """msgspec's message without its path, and that path as a tuple of keys and indexes."""
    text = str(error)
    found = _AT.search(text)
    if found is None:
        return text, ()
    steps: list[str | int] = []
    for step in _STEP.finditer(found["path"]):
        if step["index"] is not None:
            steps.append(int(step["index"]))
        else:
            steps.append(step["key"] if step["key"] is not None else step["quoted"])
    return text[: found.start()], tuple(steps)


def _code(message: str) -> str:
    return next((code for prefix, code in _CODES if prefix in message), "invalid")


class _Collector:
    """The slow pass: every invalid field of ``raw`` against the declared type.

    ``strict=False`` is msgspec's conversion of text to numbers, booleans..., for a query
    string, whose values are all text.
    """

    def __init__(
        self, forbid_unknown: bool, location: Location = "body", *, strict: bool = True
    ) -> None:
        self.forbid_unknown = forbid_unknown
        self.location: Location = location
        self.strict = strict
        self.errors: list[FieldError] = []

    def add(self, path: Path, message: str, code: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(FieldError(self.location, path, message, code))

    def walk(self, raw: Any, annotation: Any, path: Path) -> None:
        if len(self.errors) >= MAX_ERRORS:
            return
        failure: msgspec.ValidationError | None = None
        try:
            msgspec.convert(raw, annotation, strict=self.strict)
        except msgspec.ValidationError as exc:
            failure = exc
        before = len(self.errors)
        self._descend(raw, annotation, path, checked=failure is None)
        if failure is not None and len(self.errors) == before:
            message, inner = _split(failure)
            self.add(path + inner, message, _code(message))

    def _descend(self, raw: Any, annotation: Any, path: Path, *, checked: bool) -> None:
        base, _ = _strip(annotation)
        origin = typing.get_origin(base)
        args = typing.get_args(base)
        if _is_model(base) and isinstance(raw, dict):
            fields = _fields(base)
            for field in fields:
                if field.wire_name in raw:
                    if not checked:
                        self.walk(raw[field.wire_name], field.type, (*path, field.wire_name))
                    else:
                        self.unknown(raw[field.wire_name], field.type, (*path, field.wire_name))
                elif field.required and not checked:
                    self.add((*path, field.wire_name), "this field is required", "missing")
            if _refuses_unknown(base, self.forbid_unknown):
                known = {field.wire_name for field in fields}
                for key in raw:
                    if key not in known:
                        self.add((*path, key), "unknown field: remove it", "unknown_field")
        elif origin in (list, set, frozenset, tuple) and isinstance(raw, list) and args:
            homogeneous = origin is not tuple or (len(args) == 2 and args[1] is Ellipsis)
            for index, item in enumerate(raw):
                if homogeneous:
                    kind = args[0]
                elif index < len(args):
                    kind = args[index]
                else:
                    break
                self._item(item, kind, (*path, index), checked)
        elif origin is dict and isinstance(raw, dict) and len(args) == 2:
            for key, item in raw.items():
                self._item(item, args[1], (*path, key), checked)
        elif origin in (Union, types.UnionType) and raw is not None:
            others = [arg for arg in args if arg is not type(None)]
            if len(others) == 1:
                self._item(raw, others[0], path, checked)

    def _item(self, raw: Any, annotation: Any, path: Path, checked: bool) -> None:
        if checked:
            self.unknown(raw, annotation, path)
        else:
            self.walk(raw, annotation, path)

    def unknown(self, raw: Any, annotation: Any, path: Path) -> None:
        """Only the unknown fields, in a value that converts."""
        self._descend(raw, annotation, path, checked=True)


class _Declared(NamedTuple):
    name: str
    type: Any
    decoder: msgspec.json.Decoder[Any]
    forbid_unknown: bool
    walk_valid: bool

    def read(self, request: Request) -> Any:
        if not request.is_json:
            got = repr(request.mimetype) if request.mimetype else "no Content-Type"
            raise Problem(
                415, f"expected a JSON body with Content-Type: application/json, got {got}"
            )
        data = request.get_data(cache=True)
        if not data.strip():
            raise Problem(400, "the request body is empty; expected JSON")
        try:
            value = self.decoder.decode(data)
        except msgspec.ValidationError:
            raise self._invalid(_raw(data)) from None
        except msgspec.DecodeError as exc:
            raise Problem(400, _malformed(exc)) from None
        except RecursionError:
            raise Problem(400, "the JSON body is nested too deeply") from None
        if self.walk_valid or _LONG_NUMBER.search(data):
            raw = _raw(data)
            collector = _Collector(self.forbid_unknown)
            _past_64_bits(raw, (), collector)
            if self.walk_valid:
                collector.unknown(raw, self.type, ())
            if collector.errors:
                raise _failed(collector.errors)
        return value

    def _invalid(self, raw: Any) -> Problem:
        collector = _Collector(self.forbid_unknown)
        _past_64_bits(raw, (), collector)
        try:
            collector.walk(raw, self.type, ())
        except RecursionError:
            return Problem(400, "the JSON body is nested too deeply")
        if not collector.errors:  # msgspec's pass and convert disagree: its error, as is
            try:
                self.decoder.decode(msgspec.json.encode(raw))
            except msgspec.ValidationError as exc:
                message, path = _split(exc)
                collector.add(path, message, _code(message))
        return _failed(collector.errors)


# 19 digits in a row: the body may hold an integer past 64 bits (or only a long string).
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_INT64 = range(-(2**63), 2**63)


def _past_64_bits(raw: Any, path: Path, collector: _Collector) -> None:
    """Refuse each integer past 64 bits: msgspec takes any size for ``int``, and a database
    column (or another client) cannot hold it."""
    stack: list[tuple[Any, Path]] = [(raw, path)]
    while stack:
        value, where = stack.pop()
        if type(value) is int and value not in _INT64:
            collector.add(where, "this number does not fit a 64-bit integer", "range")
        elif isinstance(value, dict):
            stack.extend((item, (*where, key)) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, (*where, index)) for index, item in enumerate(value))


_MANY = (list, set, frozenset, tuple)


class _DeclaredQuery(NamedTuple):
    name: str
    type: Any
    fields: tuple[tuple[str, bool], ...]  # each field's name, and whether it takes a list
    forbid_unknown: bool

    def read(self, request: Request) -> Any:
        args = request.args
        raw: dict[str, Any] = {}
        for name, many in self.fields:
            if name in args:
                raw[name] = args.getlist(name) if many else args[name]
        try:
            value = msgspec.convert(raw, self.type, strict=False)
        except msgspec.ValidationError:
            value = None
        collector = _Collector(self.forbid_unknown, "query", strict=False)
        if self.forbid_unknown:
            known = {name for name, _ in self.fields}
            for key in args:
                if key not in known:
                    collector.add((key,), "unknown query parameter: remove it", "unknown_field")
        if value is None:
            collector.walk(raw, self.type, ())
        if collector.errors:
            raise _failed(collector.errors, "the query string")
        return value


def _failed(errors: list[FieldError], what: str = "the request body") -> Problem:
    count = len(errors)
    listed = f"{count} invalid field{'s' if count != 1 else ''}"
    if count >= MAX_ERRORS:
        listed = f"at least {count} invalid fields (the first {MAX_ERRORS} are listed)"
    return Problem(422, f"{what} does not validate: {listed}", errors)


def _raw(data: bytes) -> Any:
    """The body as plain JSON values, for the slow pass; a 400 when it is not JSON."""
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Problem(400, _malformed(exc)) from None
    except RecursionError:
        raise Problem(400, "the JSON body is nested too deeply") from None


def _malformed(error: Exception) -> str:
    text = str(error)
    if text == "Input data was truncated":
        text = "truncated, or a string holds a lone UTF-16 surrogate"
    return f"malformed JSON in the request body: {text}"


def _marker(annotation: Any) -> Body | Query | None:
    """Where a parameter comes from: its marker, or the body for a model without one."""
    base, metadata = _strip(annotation)
    for item in metadata:
        if isinstance(item, Body | Query):
            return item
        if item is Body or item is Query:
            return item()
    return Body() if _is_model(base) else None


def _query(name: str, annotation: Any, marker: Query, owner: str) -> _DeclaredQuery:
    base, _ = _strip(annotation)
    if not _is_model(base):
        raise TypeError(
            f"the query parameter {name!r} of {owner} must be a dataclass, TypedDict or "
            f"msgspec.Struct whose fields are the query's parameters, got {annotation!r}"
        )
    # msgspec reads a type's annotations once and keeps them on it: now, while its module is
    # loaded, rather than at the first request.
    msgspec.json.Decoder(annotation)
    fields = tuple(
        (field.wire_name, typing.get_origin(_strip(field.type)[0]) in _MANY)
        for field in _fields(base)
    )
    return _DeclaredQuery(name, annotation, fields, marker.forbid_unknown_fields)


def declared_input(handler: Any, variables: Iterable[str]) -> list[_Declared | _DeclaredQuery]:
    """The parameters of ``handler`` filled from the request, read once at registration.

    The first parameter (the request) and the URL values are not; neither is a parameter
    whose annotation is not a model or marked :class:`Body`, so existing handlers keep
    their meaning. A type msgspec cannot decode is a ``TypeError`` here, at import time.
    """
    try:
        signature = inspect.signature(handler)
        target = inspect.unwrap(handler)
        hints = typing.get_type_hints(target, include_extras=True)
    except (TypeError, ValueError, NameError):
        return []
    skip = set(variables)
    declared: list[_Declared | _DeclaredQuery] = []
    for position, parameter in enumerate(signature.parameters.values()):
        if position == 0 or parameter.name in skip or parameter.name not in hints:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints[parameter.name]
        body = _marker(annotation)
        if body is None:
            continue
        if isinstance(body, Query):
            try:
                declared.append(_query(parameter.name, annotation, body, target.__qualname__))
            except NameError as exc:
                raise TypeError(f"cannot resolve the type of {parameter.name!r}: {exc}") from None
            continue
        try:
            decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(annotation)
            msgspec.json.schema(annotation)  # refuses a custom type, which no JSON decodes to
        except TypeError as exc:
            raise TypeError(
                f"the body parameter {parameter.name!r} of {target.__qualname__} has a type "
                f"msgspec cannot decode: {exc}"
            ) from None
        try:
            models = models_in(annotation)
        except NameError as exc:
            raise TypeError(
                f"the body parameter {parameter.name!r} of {target.__qualname__} has a type "
                f"whose annotations cannot be resolved: {exc}"
            ) from None
        # msgspec's pass refuses unknown fields only in a Struct that says so.
        forbid = body.forbid_unknown_fields
        walk = forbid and any(not _refuses_unknown(model, False) for model in models)
        declared.append(
            _Declared(parameter.name, annotation, decoder, body.forbid_unknown_fields, walk)
        )
    for kind, what in ((_Declared, "bodies"), (_DeclaredQuery, "query models")):
        same = [item.name for item in declared if isinstance(item, kind)]
        if len(same) > 1:
            names = ", ".join(same)
            raise TypeError(
                f"{target.__qualname__} declares several {what} ({names}); one at most"
            )
    return declared


def with_declared_input(handler: Any, declared: list[_Declared | _DeclaredQuery]) -> Any:
    """``handler``, or a wrapper that fills the declared parameters before calling it.

    The query is read before the body, so a request wrong in both names the query first.
    """
    if not declared:
        return handler
    ordered = sorted(declared, key=lambda item: isinstance(item, _Declared))

    def call(request: Request, **values: Any) -> Any:
        for item in ordered:
            values[item.name] = item.read(request)
        return handler(request, **values)

    functools.update_wrapper(call, handler)
    return call
