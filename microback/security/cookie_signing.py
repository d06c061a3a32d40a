"""Session cookies in itsdangerous's signed format, written and read in a few calls.

Sessions were signed with itsdangerous's ``URLSafeTimedSerializer`` (HMAC-SHA256, the key
derived from each secret key and the salt). Measured (benchmarks/README.md, issue 19), it was
most of a request that reads and rewrites a cookie session: every call builds a new
``Signer``, derives the key again (a SHA-256), passes the value through some twenty Python
calls, and ``zlib.compress`` sets up a 256 KB deflate state for every cookie written, even
a 12-byte one, to learn whether it shrinks (3 to 50 µs on the loaded host, depending on
whether the allocator maps that memory anew).

:class:`CookieSigner` writes and reads the same format::

    payload "." timestamp "." signature

``payload`` is the JSON in URL-safe base64, or ``"."`` and the zlib-compressed JSON when that
is shorter; ``timestamp`` is ``int(time.time())`` as big-endian bytes; ``signature`` is the
HMAC-SHA256 of ``payload "." timestamp`` under the derived key; base64 without padding.
The keys are derived once, by itsdangerous's own ``Signer.derive_key``. The signature is
compared in constant time, the age is checked against ``max_age`` (a timestamp from the
future is refused, as itsdangerous does), and the payload is decoded only once the signature
holds. Compression uses a 16 KB window instead of 32 KB: as small for a cookie-sized
payload, and zlib's header says so, so any inflater reads it. A cookie itsdangerous signed
(from before this module) verifies here, and one signed here verifies with itsdangerous:
neither an upgrade nor a rollback logs anybody out. tests/security/test_cookie_signing.py
holds the two to the same format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import zlib
from collections.abc import Sequence
from typing import Any

from itsdangerous import Signer

from ..http import json_dumps, json_loads

__all__ = ["CookieSigner"]

# zlib's settings for the payload: level 6 as zlib.compress, a 16 KB window and a smaller
# hash table, whose state takes ~75 KB rather than ~260 KB to set up (2 µs where
# zlib.compress took 11-50 µs); on session-sized JSON (up to 12 KB tried) it is no longer.
_COMPRESSION = (6, zlib.DEFLATED, 14, 4)


def _encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _decode(data: bytes) -> bytes:
    """Decode as itsdangerous does (padding restored); raises ``binascii.Error``."""
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


class CookieSigner:
    """Sign JSON data into a cookie value, and give it back from one that verifies.

    ``secret_keys``: the first signs, all verify (newest first). ``salt`` separates this use
    of the keys from others: a value signed for another purpose does not verify.
    """

    def __init__(self, secret_keys: Sequence[str], *, salt: str) -> None:
        derivation = Signer(list(secret_keys), salt=salt, digest_method=hashlib.sha256)
        self._keys = tuple(derivation.derive_key(key) for key in secret_keys)

    def _signature(self, key: bytes, value: bytes) -> bytes:
        return _encode(hmac.digest(key, value, "sha256"))

    def dumps(self, data: Any) -> str:
        """``data`` as JSON, compressed if that is shorter, timestamped and signed."""
        plain = json_dumps(data).encode()
        compressor = zlib.compressobj(*_COMPRESSION)
        packed = compressor.compress(plain) + compressor.flush()
        payload = b"." + _encode(packed) if len(packed) < len(plain) - 1 else _encode(plain)
        now = int(time.time())
        value = payload + b"." + _encode(now.to_bytes(8, "big").lstrip(b"\x00"))
        return (value + b"." + self._signature(self._keys[0], value)).decode("ascii")

    def loads(self, cookie: str, *, max_age: int) -> Any:
        """The data in ``cookie``; None if it is forged, tampered with, signed with another
        key or salt, older than ``max_age`` seconds, from the future, or malformed."""
        try:
            signed = cookie.encode("ascii")
        except UnicodeEncodeError:
            return None
        value, _, signature = signed.rpartition(b".")
        for key in self._keys:
            if hmac.compare_digest(self._signature(key, value), signature):
                break
        else:
            return None
        # A value signed without a timestamp has its payload read as one: a time in the
        # future (or one too long ago), refused here as itsdangerous refuses it.
        payload, _, stamp = value.rpartition(b".")
        try:
            signed_at = int.from_bytes(_decode(stamp), "big")
            if not 0 <= int(time.time()) - signed_at <= max_age:
                return None
            if payload.startswith(b"."):
                return json_loads(zlib.decompress(_decode(payload[1:])))
            return json_loads(_decode(payload))
        except (binascii.Error, zlib.error, ValueError):
            return None
