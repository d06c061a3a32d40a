"""The JSON codec: compact, strict encoding and strict, bounded decoding.

Every request body and response body that is JSON passes through here, so both directions
are made once and kept fast; both refuse what is not JSON (NaN, lone surrogates, 1e999)
rather than hand a client or a handler something another parser would reject.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import math
import re
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

from ._stdlib_json import compact_c_encoder
from .params import _shown

__all__ = ["json_dumps", "json_loads"]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# One encoder for every call: json.dumps() with any option but the defaults builds a new
# JSONEncoder each time, which cost more than encoding a small object.
_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
)
# And the C encoder under it, made once: JSONEncoder.encode() builds it anew on every call,
# which was most of the cost of encoding a small object (figures in CHANGES.md, issue 6). A
# value that contains itself ends in a RecursionError, answered below as JSONEncoder's
# ValueError (see _stdlib_json).
_c_encoder = compact_c_encoder(_json_default)


def json_dumps(value: Any) -> str:
    """Serialize compactly; dates, UUIDs, decimals, dataclasses and sets are understood.

    NaN and infinity raise ``ValueError``: they are not JSON and break strict clients. So
    does a value that contains itself.
    """
    if _c_encoder is None:
        return _encoder.encode(value)
    try:
        return "".join(_c_encoder(value, 0))
    except RecursionError:
        raise ValueError("the value contains itself, or is nested too deeply for JSON") from None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # json.loads turns 1e999 into inf, which no JSON encoder (ours included) writes back.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {_shown(text)} is too large for a 64-bit float")
    return value


# One decoder for every call without an object_hook: json.loads() with any option builds a
# new JSONDecoder (and its scanner) each time: 2.8 µs against 0.7 for a session cookie's
# {"visits":1} (issue 19).
_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)

# A \uD800-\uDFFF escape, or such a character in a str: json.loads keeps a lone one in the
# string it returns, and then nothing can encode the string as UTF-8 (a 500 on the way out).
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE_CHARACTER = re.compile(r"[\ud800-\udfff]")


def _lone_surrogate(value: Any) -> str | None:
    """The first string in ``value`` (keys included) that holds a lone surrogate, if any."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE_CHARACTER.search(item):
                return item
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def json_loads(
    data: str | bytes, *, object_hook: Callable[[dict[str, Any]], Any] | None = None
) -> Any:
    """Parse strictly: UTF-8 only (RFC 8259), no NaN/Infinity, bounded nesting, numbers that
    fit a 64-bit float (no ``1e999``), strings of Unicode characters (no lone ``"\\ud800"``).

    Every failure is a ``ValueError``, so a hostile body cannot turn into a 500.
    """
    if not isinstance(data, str):
        # json.loads would guess UTF-16/32 from the first bytes; JSON on the wire is UTF-8.
        data = data.decode("utf-8-sig")
    try:
        if object_hook is None and not data.startswith("\ufeff"):
            value = _decoder.decode(data)
        else:  # json.loads names a byte order mark in its error; the decoder would not
            value = json.loads(
                data,
                parse_constant=_reject_constant,
                parse_float=_finite_float,
                object_hook=object_hook,
            )
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    # Only a body with such an escape is walked: escaped pairs are joined into one character.
    if _SURROGATE.search(data) and (bad := _lone_surrogate(value)) is not None:
        code = f"\\u{ord(_SURROGATE_CHARACTER.findall(bad)[0]):04x}"
        raise ValueError(f"a string holds a lone UTF-16 surrogate ({code}), not a character")
    return value
