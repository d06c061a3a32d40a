"""A declared JSON body: decoded and validated by msgspec in one pass, every invalid field
collected by a second pass only when that one fails.

Unknown fields are refused by default; msgspec ignores them in dataclasses and
``TypedDict`` bodies, so those take the second pass on the raw JSON for valid input too.
Malformed JSON is a 400, another Content-Type a 415.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import msgspec

from ..http import Request
from ..http.problem import Location, Problem
from .collect import Collector, code, failed, long_number_in, past_64_bits, split

__all__ = ["JSONBody", "json_data", "raw_json"]


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
            raise self._invalid(raw_json(data), exc) from None
        except msgspec.DecodeError as exc:
            raise Problem(400, _malformed(exc)) from None
        except RecursionError:
            raise Problem(400, "the JSON body is nested too deeply") from None
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
        if not collector.errors:
            # The raw value fits, the bytes did not: a duplicate key whose earlier value is
            # invalid (msgspec checks each; the raw object keeps the last). msgspec's error.
            message, path = split(first)
            collector.add(path, message, code(message))
        return failed(collector.errors)
