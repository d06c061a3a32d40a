"""The default security headers, as plain data shared by the app and the server.

The app adds security headers to every response it makes
(:mod:`microback.security_headers`), worked out from its settings, whose defaults are the
values here. The server (:mod:`microback.server`) writes some responses itself — the requests
it refuses before any application sees them (400, 408, 413, 414, 431, 501, 505) — and, since
it serves any WSGI callable, it cannot read an app's settings: it sends these defaults.
One source keeps the two from drifting apart.

This module imports nothing, so every layer may import it.
"""

from __future__ import annotations

FRAME_OPTIONS = "DENY"
REFERRER_POLICY = "same-origin"
CROSS_ORIGIN_OPENER_POLICY = "same-origin"
HSTS_SECONDS = 365 * 24 * 3600

NOSNIFF = ("X-Content-Type-Options", "nosniff")

# The Content-Security-Policy equivalent of each X-Frame-Options value (CSP Level 2
# frame-ancestors), sent with it: browsers that know CSP follow it and ignore the other.
_FRAME_ANCESTORS = {"DENY": "frame-ancestors 'none'", "SAMEORIGIN": "frame-ancestors 'self'"}


def framing_headers(frame_options: str) -> list[tuple[str, str]]:
    """``X-Frame-Options`` for *frame_options*, with its ``frame-ancestors`` twin if it has one."""
    if not frame_options:
        return []
    headers = [("X-Frame-Options", frame_options)]
    policy = _FRAME_ANCESTORS.get(frame_options.upper())
    if policy is not None:
        headers.append(("Content-Security-Policy", policy))
    return headers


#: What a response gets with the default settings over plain HTTP (HSTS needs HTTPS and the
#: app's own setting, so it is not part of it).
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    NOSNIFF,
    *framing_headers(FRAME_OPTIONS),
    ("Referrer-Policy", REFERRER_POLICY),
    ("Cross-Origin-Opener-Policy", CROSS_ORIGIN_OPENER_POLICY),
)
