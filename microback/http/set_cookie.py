"""``Set-Cookie`` headers for a cookie written on many responses with the same attributes.

werkzeug's ``dump_cookie`` quotes the path, encodes the domain, checks SameSite and formats
``Expires`` (an HTTP date, now + max-age) on every call: measured, it was the largest single
part of a request that rewrites a cookie session (benchmarks/README.md, issue 19). The
attributes of a session cookie are the same on every response but for ``Expires``, which
changes once a second. So ``dump_cookie`` itself formats them, once per second and set of
attributes, and a value that needs no quoting (a signed token: URL-safe base64 and dots) is
put in front; any other value goes through ``dump_cookie`` whole. The header is the one
``dump_cookie`` would give, byte for byte.
"""

from __future__ import annotations

import re
import time
from typing import Any

from werkzeug.http import dump_cookie

__all__ = ["CookieHeader"]

#: Values put in front of the cached attributes as they are: characters ``dump_cookie``
#: never quotes (a subset of them).
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9._-]*")


class CookieHeader:
    """Formats one cookie's ``Set-Cookie`` value; keeps the attributes of the last second."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._attributes = ""

    def __call__(
        self,
        name: str,
        value: str,
        *,
        max_age: int | None,
        path: str,
        domain: str | None,
        secure: bool,
        httponly: bool,
        samesite: str | None,
    ) -> str:
        """The header value ``dump_cookie(name, value, ...)`` gives, with these attributes."""
        attributes: dict[str, Any] = {
            "max_age": max_age,
            "path": path,
            "domain": domain,
            "secure": secure,
            "httponly": httponly,
            "samesite": samesite,
        }
        if not name.isascii() or not _PLAIN_VALUE.fullmatch(value):
            return dump_cookie(name, value, **attributes)
        now = int(time.time())
        key = (now, name, max_age, path, domain, secure, httponly, samesite)
        if key != self._key:
            # Expires as dump_cookie computes it (now + max_age, whole seconds), for this second.
            expires = None if max_age is None else now + max_age
            header = dump_cookie(name, "", expires=expires, **attributes)
            self._attributes = header[len(name) + 1 :]
            self._key = key
        return f"{name}={value}{self._attributes}"
