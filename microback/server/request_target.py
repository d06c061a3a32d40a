"""Check a request target (RFC 9112 §3.2) before any application sees it.

llhttp has already refused characters that cannot be in a target (spaces, controls, non-ASCII);
what it accepts may still not be a target an origin server can serve. The four forms:

- origin form, ``/path?query`` (nearly every request): accepted, once any ``%`` in the path
  is followed by two hex digits (the path is percent-decoded for ``PATH_INFO``; a ``%zz``
  there has no meaning). The query is passed on as sent, for the application to parse.
- asterisk form, ``*``: only for ``OPTIONS`` (§3.2.4); any other method gets 400.
- absolute form, ``http://host:port/path?query`` (what a client sends to a proxy): accepted
  for ``http`` and ``https`` with a valid authority — a registered name or an IPv4 address
  or a bracketed IPv6 address, an optional port up to 65535, no user information (RFC 9110
  §4.2.4) — and served as its path and query.
- authority form, ``host:port``: only for CONNECT, which the server refuses with 501 before
  the target is looked at.

Anything else is a 400 that says which part is wrong; nothing here raises anything else, so
a malformed target can never reach the environ builder and fail there.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import RequestError, bad_request

_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})").search
_ABSOLUTE = re.compile(rb"(?i:https?)://([^/?#]*)([^?#]*)(\?[^#]*)?(?:#.*)?", re.DOTALL).fullmatch
_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*:").match
# RFC 3986 §3.2: host (an IP literal in brackets, or a reg-name / IPv4 address: unreserved,
# sub-delims and pct-encoded characters), then an optional port of digits.
_AUTHORITY = re.compile(rb"(\[[^\]]*\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::([0-9]*))?").fullmatch
_MAX_PORT = 65535


def origin_form(method: str, target: bytes) -> bytes | None:
    """Check *target*; for an absolute-form target give its path and query, else ``None``.

    Raises a :class:`~.errors.RequestError` (400) that names what is wrong.
    """
    if target[:1] == b"/":
        if b"%" in target:
            _check_percent(target.partition(b"?")[0].partition(b"#")[0])
        return None
    if target == b"*":
        if method != "OPTIONS":
            raise bad_request(f"the request target '*' is for OPTIONS only, not {method}")
        return None
    match = _ABSOLUTE(target)
    if match is None:
        if _SCHEME(target) and b"//" in target:
            raise bad_request("the request target's scheme must be http or https")
        raise bad_request("malformed request target; send a path such as /items?page=2")
    authority, path, query = match.groups()
    _check_authority(authority)
    if b"%" in path:
        _check_percent(path)
    return (path or b"/") + (query or b"")


def _check_percent(path: bytes) -> None:
    if _BAD_PERCENT(path):
        raise bad_request("malformed percent-encoding in the request path: % needs two hex digits")


def _check_authority(authority: bytes) -> None:
    if b"@" in authority:
        raise bad_request("the request target must not carry user information (user@host)")
    match = _AUTHORITY(authority)
    if match is None:
        raise _bad_authority()
    host, port = match.groups()
    if host[:1] == b"[":
        try:
            # A zone id (%25eth0) means nothing to another host; IPvFuture is not in use.
            if b"%" in host:
                raise ValueError(host)
            ipaddress.IPv6Address(host[1:-1].decode("ascii"))
        except ValueError:
            raise RequestError(400, "malformed IPv6 address in the request target") from None
    elif b"%" in host and _BAD_PERCENT(host):
        raise _bad_authority()
    if port and (len(port) > len(str(_MAX_PORT)) or int(port) > _MAX_PORT):
        raise bad_request(f"port in the request target above {_MAX_PORT}")


def _bad_authority() -> RequestError:
    return bad_request("malformed host or port in the request target")
