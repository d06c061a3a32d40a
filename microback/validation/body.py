"""A declared JSON body: decoded and validated by msgspec in one pass, every invalid field
collected by a second pass only when that one fails.

A key repeated in one object is a 400: msgspec and every other parser keep the last value, so a
proxy or a log that reads the first would see another request than the handler. A count of
colons clears the usual body in C; only a body it cannot clear (colons inside strings, or a
repeat) takes the standard library's parser, which finds the key (about 2 µs for ten fields).

Unknown fields are refused by default; msgspec ignores them in dataclasses and
``TypedDict`` bodies, so those take the second pass on the raw JSON for valid input too.
Malformed JSON is a 400, another Content-Type a 415.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import msgspec

from ..http import Request
from ..http.problem import Location, Problem
from .collect import Collector, code, failed, long_number_in, past_64_bits, split

__all__ = ["JSONBody", "json_data", "raw_json", "refuse_repeated_keys"]


def json_data(request: Request) -> bytes:
    """The body's bytes, refused (415, 400) unless they are said to be JSON and are there."""
    # The usual header is compared as is: werkzeug's parse of it costs more than the decode.
    if request.environ.get("CONTENT_TYPE") != "application/json" and not request.is_json:
        got = repr(request.mimetype) if request.mimetype else "no Content-Type"
        raise Problem(415, f"expected a JSON body with Content-Type: application/json, got {got}")
    data = request.get_data(cache=True)
    if not data or data.isspace():
        raise Problem(400, "the request body is empty; expected JSON")
    return data


def raw_json(data: bytes) -> Any:
    """The body as plain JSON values; a 400 when it is not JSON (msgspec refuses NaN,
    Infinity, lone surrogates and bytes that are not UTF-8)."""
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Problem(400, _malformed(exc)) from None
    except RecursionError:
        raise Problem(400, "the JSON body is nested too deeply") from None


class _RepeatedKey(Exception):
    pass


def _pairs_once(pairs: list[tuple[str, Any]]) -> None:
    if len(dict(pairs)) != len(pairs):  # the usual case stays in C
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)


_REPEATS = json.JSONDecoder(object_pairs_hook=_pairs_once)


_ENCODER = msgspec.json.Encoder()


def _no_key_can_repeat(data: bytes) -> bool:
    r"""True when counting colons proves that no object of ``data`` has a key twice.

    Outside strings a JSON colon only ends a key, so ``data`` holds one colon per key sent
    plus those inside strings. Decoded and encoded again by msgspec (in C), the body keeps
    one key of each repeated pair and drops the other's value: fewer colons. A ``\u003a``
    escape decodes to a colon it did not have, so each is counted as one.
    """
    colons = data.count(b":")
    if b"\\u" in data:
        colons += data.count(b"\\u003a") + data.count(b"\\u003A")
    try:
        again = _ENCODER.encode(msgspec.json.decode(data))
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return False  # the standard library's parse decides
    return again.count(b":") == colons


def refuse_repeated_keys(data: bytes) -> None:
    """A 400 when an object of the JSON body has a key twice (call it once msgspec took it)."""
    if _no_key_can_repeat(data):
        return
    try:
        _REPEATS.decode(data.decode())
    except _RepeatedKey as repeated:
        key = repeated.args[0]
        raise Problem(
            400, f"the JSON body has the key {key!r} twice in one object; send it once"
        ) from None
    except (ValueError, RecursionError):
        pass  # what json refuses and msgspec took (deep nesting) is msgspec's to judge


def _malformed(error: Exception) -> str:
    text = str(error)
    if text == "Input data was truncated":
        text = "truncated, or a string holds a lone UTF-16 surrogate"
    return f"malformed JSON in the request body: {text}"


@dataclasses.dataclass(frozen=True)
class JSONBody:
    name: str
    type: Any
    decoder: msgspec.json.Decoder[Any]
    forbid_unknown: bool
    walk_valid: bool

    location: ClassVar[Location] = "body"

    def read(self, request: Request) -> Any:
        data = json_data(request)
        try:
            value = self.decoder.decode(data)
        except msgspec.ValidationError as exc:
            raw = raw_json(data)
            refuse_repeated_keys(data)
            raise self._invalid(raw, exc) from None
        except msgspec.DecodeError as exc:
            raise Problem(400, _malformed(exc)) from None
        except RecursionError:
            raise Problem(400, "the JSON body is nested too deeply") from None
        refuse_repeated_keys(data)
        if self.walk_valid or long_number_in(data):
            raw = raw_json(data)
            collector = Collector(self.forbid_unknown)
            past_64_bits(raw, (), collector)
            if self.walk_valid:
                collector.unknown(raw, self.type, ())
            if collector.errors:
                raise failed(collector.errors)
        return value

    def _invalid(self, raw: Any, first: msgspec.ValidationError) -> Problem:
        collector = Collector(self.forbid_unknown)
        past_64_bits(raw, (), collector)
        try:
            collector.walk(raw, self.type, ())
        except RecursionError:
            return Problem(400, "the JSON body is nested too deeply")
        if not collector.errors:  # a constraint the walk does not know: msgspec's own message
            message, path = split(first)
            collector.add(path, message, code(message))
        return failed(collector.errors)
