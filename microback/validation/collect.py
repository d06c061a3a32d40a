"""The slow pass: every invalid field of a value against its declared type, and the 422
problem document that lists them.

msgspec stops at the first error. When its single pass fails, :class:`Collector` walks the
raw value along the declared type and converts each field on its own with
``msgspec.convert``, which yields one :class:`FieldError` per invalid field.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Union

import msgspec

from ..http.problem import FieldError, Location, Problem
from .model import fields, is_model, refuses_unknown, strip

__all__ = [
    "MAX_ERRORS",
    "Collector",
    "code",
    "failed",
    "long_number_in",
    "past_64_bits",
    "split",
]

#: At most this many invalid fields are listed: a huge array of wrong items is one response.
MAX_ERRORS = 100

Path = tuple[str | int, ...]


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


def split(error: msgspec.ValidationError) -> tuple[str, Path]:
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


def code(message: str) -> str:
    return next((code for prefix, code in _CODES if prefix in message), "invalid")


class Collector:
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
            message, inner = split(failure)
            self.add(path + inner, message, code(message))

    def _descend(self, raw: Any, annotation: Any, path: Path, *, checked: bool) -> None:
        base, _ = strip(annotation)
        origin = typing.get_origin(base)
        args = typing.get_args(base)
        if is_model(base) and isinstance(raw, dict):
            declared = fields(base)
            for field in declared:
                if field.wire_name in raw:
                    if not checked:
                        self.walk(raw[field.wire_name], field.type, (*path, field.wire_name))
                    else:
                        self.unknown(raw[field.wire_name], field.type, (*path, field.wire_name))
                elif field.required and not checked:
                    self.add((*path, field.wire_name), "this field is required", "missing")
            if refuses_unknown(base, self.forbid_unknown):
                known = {field.wire_name for field in declared}
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


# Every digit mapped to "9" and the rest to " ": ~0.8 µs for a 10-field body, where the
# regular expression [0-9]{19} took 5, more than msgspec's decode (benchmarks/contract.py).
_DIGITS = bytes(0x39 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_NINETEEN_DIGITS = b"9" * 19


def long_number_in(data: bytes) -> bool:
    """Tell whether ``data`` has 19 digits in a row: it may hold an integer past 64 bits
    (or only a long string)."""
    return _NINETEEN_DIGITS in data.translate(_DIGITS)


_INT64 = range(-(2**63), 2**63)


def past_64_bits(raw: Any, path: Path, collector: Collector) -> None:
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


def failed(errors: list[FieldError], what: str = "the request body does") -> Problem:
    """The 422 listing ``errors``: "``what`` not validate: 3 invalid fields"."""
    count = len(errors)
    listed = f"{count} invalid field{'s' if count != 1 else ''}"
    if count >= MAX_ERRORS:
        listed = f"at least {count} invalid fields (the first {MAX_ERRORS} are listed)"
    return Problem(422, f"{what} not validate: {listed}", errors)
