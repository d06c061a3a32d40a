"""Typed parameters: query and form values, JSON body fields, and the 400s that name them.

``request.args.get_int("limit", ...)`` and ``request.json_object.get_int("age", ...)`` check
a value's type and range and answer a precise 400 ("the 'limit' parameter must be an integer
from 1 to 100, got 'abc'") rather than let a handler fail with a 500.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest

from ..routing import INT64_MAX, INT64_MIN

__all__ = ["InvalidField", "InvalidParameter", "JSONObject", "MissingField", "Params"]

_T = TypeVar("_T")
_MISSING: Any = object()
_SHOWN_VALUE_LIMIT = 40


class MissingField(BadRequest, KeyError):
    """A handler read a field the JSON body does not have; answered 400 naming it."""

    def __init__(self, field: str) -> None:
        BadRequest.__init__(self, f"the JSON body has no {field!r} field")
        self.field = field


class InvalidField(BadRequest, ValueError):
    """A JSON body field has the wrong type or is out of range; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"the {field!r} field {problem}")
        self.field = field


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if abs(value) < 1e15 else "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


class JSONObject(dict[str, Any]):
    """A JSON object from a request body, with typed getters that answer 400 naming the field.

    ``data["text"]`` on a body without ``text`` is a 400 (:class:`MissingField`, also a
    ``KeyError``), not a 500. ``data.get_str("email")``, ``get_int``, ``get_float``,
    ``get_bool``, ``get_list`` and ``get_object`` also check the type (and the range or
    length): "the 'age' field must be an integer from 0 to 150, got 200". Without a default
    the field is required; ``null`` counts as absent.
    """

    __slots__ = ()

    def __missing__(self, key: str) -> Any:
        raise MissingField(key)

    def _typed(self, name: str, default: Any, accept: Callable[[Any], bool], expected: str) -> Any:
        value = self.get(name)
        if value is None:
            if default is _MISSING:
                raise MissingField(name)
            return default
        if not accept(value):
            raise InvalidField(name, f"must be {expected}, got {_json_kind(value)}")
        return value

    def get_str(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        max_length: int | None = None,
        choices: Iterable[str] | None = None,
    ) -> Any:
        """Read a string, optionally bounded in length or limited to ``choices``."""
        value = self._typed(name, default, lambda v: isinstance(v, str), "a string")
        if value is default:
            return value
        problem = _string_problem(value, max_length, choices)
        if problem:
            raise InvalidField(name, problem)
        return value

    def get_int(
        self, name: str, default: Any = _MISSING, *, min: int | None = None, max: int | None = None
    ) -> Any:
        """Read a whole number (not a boolean, not 1.5) within ``[min, max]``.

        An unset bound is a signed 64-bit integer's: no database column holds more, and
        SQLite's driver fails on it with an error that names no field.
        """
        expected = _describe_range("an integer", min, max)

        def accept(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and _within(v, min, max)

        value = self._typed(name, default, accept, expected)
        if value is not default and not INT64_MIN <= value <= INT64_MAX:
            low = INT64_MIN if min is None else min
            high = INT64_MAX if max is None else max
            raise InvalidField(name, f"must be {_describe_range('an integer', low, high)}")
        return value

    def get_float(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        min: float | None = None,
        max: float | None = None,
    ) -> Any:
        """Read a number within ``[min, max]``, given back as a float."""
        expected = _describe_range("a number", min, max)

        def accept(v: Any) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and _within(v, min, max)

        value = self._typed(name, default, accept, expected)
        if value is default:
            return value
        try:
            return float(value)
        except OverflowError:  # an integer beyond the floats, such as 10**400
            raise InvalidField(name, f"must be {expected}, got a number too large") from None

    def get_bool(self, name: str, default: Any = _MISSING) -> Any:
        """Read ``true`` or ``false``."""
        return self._typed(name, default, lambda v: isinstance(v, bool), "true or false")

    def get_list(self, name: str, default: Any = _MISSING) -> Any:
        """Read a list (its items are the handler's to check)."""
        return self._typed(name, default, lambda v: isinstance(v, list), "a list")

    def get_object(self, name: str, default: Any = _MISSING) -> Any:
        """Read a nested object, itself a :class:`JSONObject`."""
        return self._typed(name, default, lambda v: isinstance(v, dict), "an object")


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _string_problem(value: str, max_length: int | None, choices: Iterable[str] | None) -> str:
    """Say what is wrong with a string parameter or field ("" when nothing is)."""
    if max_length is not None and len(value) > max_length:
        return f"must be at most {max_length} characters long"
    if choices is not None and value not in (allowed := list(choices)):
        listed = ", ".join(repr(choice) for choice in allowed)
        return f"must be one of {listed}, got {_shown(value)}"
    return ""


class InvalidParameter(BadRequest, ValueError):
    """A query or form parameter is missing or malformed; ``parameter`` names it."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"the {parameter!r} parameter {problem}")
        self.parameter = parameter


def _describe_range(kind: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{kind} from {low} to {high}"
    if low is not None:
        return f"{kind} of at least {low}"
    if high is not None:
        return f"{kind} of at most {high}"
    return kind


def _shown(raw: str) -> str:
    if len(raw) > _SHOWN_VALUE_LIMIT:
        raw = raw[:_SHOWN_VALUE_LIMIT] + "…"
    return repr(raw)


class Params(ImmutableMultiDict[str, str]):
    """Query or form parameters with typed getters that answer 400 naming the parameter.

    ``request.args.get_int("limit", default=20, min=1, max=100)`` returns an ``int`` or raises
    :class:`InvalidParameter` ("the 'limit' parameter must be an integer from 1 to 100, got
    'abc'"). Without a default the parameter is required.
    """

    def _raw(self, name: str, default: Any, *, empty_is_missing: bool = True) -> str | None:
        raw = self.get(name)
        # An empty form field or "?limit=" means "not given", as HTML forms send it.
        if raw == "" and empty_is_missing:
            raw = None
        if raw is None and default is _MISSING:
            raise InvalidParameter(name, "is required")
        return raw

    @overload
    def get_int(self, name: str, *, min: int | None = ..., max: int | None = ...) -> int: ...
    @overload
    def get_int(
        self, name: str, default: _T, *, min: int | None = ..., max: int | None = ...
    ) -> int | _T: ...
    def get_int(
        self, name: str, default: Any = _MISSING, *, min: int | None = None, max: int | None = None
    ) -> Any:
        """Read an integer within ``[min, max]``.

        An unset bound is a signed 64-bit integer's, as for ``JSONObject.get_int``: the ids a
        JSON answer gives out come back in query strings.
        """
        raw = self._raw(name, default)
        if raw is None:
            return default
        text = raw.strip()
        # int() also takes "1_000" and "+5"; a query parameter should be plain digits.
        digits = text[1:] if text[:1] == "-" else text
        plain = digits.isascii() and digits.isdigit()
        beyond_64_bits = plain
        if plain and len(digits) <= 19:  # 64-bit integers have 19 digits at most
            value = int(text)
            beyond_64_bits = not INT64_MIN <= value <= INT64_MAX
            if not beyond_64_bits and _within(value, min, max):
                return value
        if beyond_64_bits:  # the bounds left unset are what was exceeded: name them
            min = INT64_MIN if min is None else min
            max = INT64_MAX if max is None else max
        expected = _describe_range("an integer", min, max)
        raise InvalidParameter(name, f"must be {expected}, got {_shown(raw)}")

    @overload
    def get_float(
        self, name: str, *, min: float | None = ..., max: float | None = ...
    ) -> float: ...
    @overload
    def get_float(
        self, name: str, default: _T, *, min: float | None = ..., max: float | None = ...
    ) -> float | _T: ...
    def get_float(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        min: float | None = None,
        max: float | None = None,
    ) -> Any:
        """Read a finite number within ``[min, max]``."""
        raw = self._raw(name, default)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and _within(value, min, max):
            return value
        expected = _describe_range("a number", min, max)
        raise InvalidParameter(name, f"must be {expected}, got {_shown(raw)}")

    @overload
    def get_bool(self, name: str) -> bool: ...
    @overload
    def get_bool(self, name: str, default: _T) -> bool | _T: ...
    def get_bool(self, name: str, default: Any = _MISSING) -> Any:
        """Read ``true/false``, ``1/0``, ``yes/no`` or ``on/off`` (any case)."""
        raw = self._raw(name, default)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise InvalidParameter(name, f"must be true or false, got {_shown(raw)}")

    @overload
    def get_str(
        self, name: str, *, max_length: int | None = ..., choices: Iterable[str] | None = ...
    ) -> str: ...
    @overload
    def get_str(
        self,
        name: str,
        default: _T,
        *,
        max_length: int | None = ...,
        choices: Iterable[str] | None = ...,
    ) -> str | _T: ...
    def get_str(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        max_length: int | None = None,
        choices: Iterable[str] | None = None,
    ) -> Any:
        """Read a string, optionally bounded in length or limited to ``choices``.

        Unlike the other getters, an empty value is a value (``""``), not a missing one.
        """
        raw = self._raw(name, default, empty_is_missing=False)
        if raw is None:
            return default
        problem = _string_problem(raw, max_length, choices)
        if problem:
            raise InvalidParameter(name, problem)
        return raw
