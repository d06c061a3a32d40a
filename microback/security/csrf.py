"""CSRF protection: a per-session token and an Origin check on unsafe requests.

A browser attaches the session cookie to any request a foreign page makes it send, so a
cookie alone does not show that the user meant the request. For every unsafe method (all
but GET, HEAD, OPTIONS and TRACE), :class:`Csrf` therefore checks, in this order:

1. **Origin.** A browser that sends ``Origin`` states who made the request: a scheme, host
   and port other than the request's own (and not in ``trusted_origins``), or the opaque
   ``null`` of sandboxed frames and ``file:`` pages, is refused. This runs with or without a
   session cookie, so it also stops *login CSRF* (a foreign page logging the victim into the
   attacker's account). Server-to-server callers (webhooks, scripts) send no ``Origin`` and
   pass. Over HTTPS a request without ``Origin`` falls back to ``Referer`` as Django does: a
   cross-site one is refused, and a missing one is refused when the session cookie is sent
   (a network attacker can plant cookies for the HTTPS site over plain HTTP).
2. **Token**, when the request carries the session cookie: the ``X-CSRF-Token`` header or the
   ``csrf_token`` form field must hold a token made by :func:`csrf_token` for this session.

Requests with ``Authorization: Bearer ...`` are exempt: a page cannot make the browser add
that header cross-site (it needs a CORS preflight the server must approve), so they carry no
ambient credential. ``Basic`` credentials are ambient (the browser remembers them) and are
not exempt. Handlers decorated with :func:`csrf_exempt` are not checked at all.

The token is a per-session secret kept in the session under ``"_csrf"`` and handed out
masked with a fresh one-time pad per call, so no two responses contain the same bytes (the
BREACH attack recovers a constant secret from compressed HTTPS responses). The secret is made
lazily, so pages that never show a form set no cookie, and is dropped by
``request.session.rotate()`` (on login), which makes every earlier token worthless.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..app import App
from ..http import SAFE_METHODS, Request, abort

__all__ = ["Csrf", "csrf_exempt", "csrf_token", "normalize_origin"]

#: The session key of the secret; ``Session.rotate()`` drops it (sessions.ROTATED_KEYS).
SESSION_KEY = "_csrf"
_SECRET_BYTES = 32
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHOWN_LIMIT = 100
_F = TypeVar("_F", bound=Callable[..., Any])


# --- origins ----------------------------------------------------------------------------------


def _origin_of(url: str, *, path_allowed: bool) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if not path_allowed and (parts.path or parts.query or parts.fragment):
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def normalize_origin(value: str) -> str | None:
    """Return ``value`` as a browser serializes an origin, or ``None`` if it is not one.

    An origin is ``scheme://host[:port]`` with an http(s) scheme and no path: the scheme and
    host are lower-cased and a default port is dropped, so ``HTTPS://App.Example:443`` is
    ``https://app.example``.
    """
    return _origin_of(value, path_allowed=False)


def _shown(value: str) -> str:
    if not value or len(value) > _SHOWN_LIMIT or not value.isprintable():
        return repr(value[:_SHOWN_LIMIT])
    return value


# --- tokens -----------------------------------------------------------------------------------


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str, size: int) -> bytes | None:
    """Decode unpadded base64url of exactly ``size`` bytes; anything else is ``None``."""
    if len(text) != (size * 4 + 2) // 3 or not text.isascii():
        return None
    try:
        # validate=True refuses characters outside the alphabet instead of skipping them.
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        return None
    return data if len(data) == size else None


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _stored_secret(request: Request) -> bytes | None:
    value = request.session.get(SESSION_KEY)
    return _decode(value, _SECRET_BYTES) if isinstance(value, str) else None


def _token_matches(token: str, secret: bytes) -> bool:
    raw = _decode(token, 2 * _SECRET_BYTES)
    if raw is None:
        return False
    pad, masked = raw[:_SECRET_BYTES], raw[_SECRET_BYTES:]
    return hmac.compare_digest(_xor(pad, masked), secret)


def csrf_token(request: Request) -> str:
    """Return a CSRF token for this request's session, to put in a form or hand to a SPA.

    Each call returns a different string (the secret under a fresh one-time pad); all of
    them verify until the session is rotated. The first call in a session creates the
    secret, which sets the session cookie.
    """
    if not isinstance(request.app.extensions.get("csrf"), Csrf):
        raise RuntimeError(
            "csrf_token() was called, but CSRF protection is not set up: create Csrf(app)"
        )
    secret = _stored_secret(request)
    if secret is None:
        secret = secrets.token_bytes(_SECRET_BYTES)
        request.session[SESSION_KEY] = _encode(secret)
    pad = secrets.token_bytes(_SECRET_BYTES)
    return _encode(pad + _xor(pad, secret))


def csrf_exempt(handler: _F) -> _F:
    """Turn CSRF checks off for one handler: for webhooks and other non-browser callers.

    Use it only for a route that authenticates its caller another way (a signature on the
    body, a shared secret): an exempt route must not act on the session cookie.
    """
    handler.csrf_exempt = True  # type: ignore[attr-defined]
    return handler


# --- the check --------------------------------------------------------------------------------


class Csrf:
    """Refuse cross-site unsafe requests on ``app`` with a 403 that says which check failed.

    Create it after the sessions (``CookieSessions(app)``) and before hooks that act on the
    user. ``trusted_origins`` lists other origins allowed to send unsafe requests, such as
    a front end on its own domain (``["https://app.example"]``); list them in ``Cors`` too.
    """

    def __init__(
        self,
        app: App,
        *,
        trusted_origins: Iterable[str] = (),
        field_name: str = "csrf_token",
        header_name: str = "X-CSRF-Token",
    ) -> None:
        sessions = app.extensions.get("sessions")
        if sessions is None:
            raise RuntimeError(
                "Csrf keeps its secret in the session: create CookieSessions(app) first"
            )
        if isinstance(trusted_origins, str):
            raise TypeError(
                f"trusted_origins must be a list such as [{trusted_origins!r}], not a string"
            )
        self.trusted_origins = frozenset(_checked_origin(o) for o in trusted_origins)
        self.field_name = field_name
        self.header_name = header_name
        self._sessions = sessions
        app.extensions["csrf"] = self
        app.before_request(self.protect)

    def protect(self, request: Request) -> None:
        """The ``before_request`` hook: return if the request may proceed, else abort 403."""
        if request.method in SAFE_METHODS or _is_exempt(request) or _has_bearer(request):
            return
        with_cookie = self._sessions.cookie(request) is not None
        self._check_origin(request, with_cookie=with_cookie)
        if with_cookie:
            self._check_token(request)

    def _trusted(self, origin: str | None, request: Request) -> bool:
        if origin is None:
            return False
        own = normalize_origin(f"{request.scheme}://{request.host}")
        return origin == own or origin in self.trusted_origins

    def _check_origin(self, request: Request, *, with_cookie: bool) -> None:
        origin = request.headers.get("Origin")
        if origin is not None:
            if origin.strip() == "null":
                abort(403, "Origin null refused")
            if not self._trusted(normalize_origin(origin), request):
                abort(403, f"cross-site request refused: Origin {_shown(origin)} is not trusted")
            return
        if request.scheme != "https":
            return  # over plain HTTP a network attacker can forge anything; Django agrees
        referer = request.headers.get("Referer")
        if not referer:
            if with_cookie:
                abort(
                    403,
                    "Referer missing: an HTTPS request that carries the session cookie "
                    "must send an Origin or Referer header",
                )
            return
        referer_origin = _origin_of(referer, path_allowed=True)
        if not self._trusted(referer_origin, request):
            shown = referer_origin or _shown(referer)
            abort(403, f"cross-site request refused: Referer {shown} is not trusted")

    def _check_token(self, request: Request) -> None:
        token = request.headers.get(self.header_name)
        if not token and request.mimetype in _FORM_TYPES:
            token = request.form.get(self.field_name)
        if not token:
            abort(
                403,
                f"CSRF token missing: send it in the {self.header_name} header "
                f"or the {self.field_name} form field",
            )
        secret = _stored_secret(request)
        if secret is None or not _token_matches(token, secret):
            abort(403, "CSRF token incorrect")


def _checked_origin(value: str) -> str:
    origin = normalize_origin(value) if isinstance(value, str) else None
    if origin is None:
        raise ValueError(
            f"trusted_origins: {value!r} is not an origin; write scheme://host[:port] "
            "with no path, such as 'https://app.example'"
        )
    return origin


def _is_exempt(request: Request) -> bool:
    if request.endpoint is None:
        return False
    handler = request.app.handler_for(request.endpoint)
    return getattr(handler, "csrf_exempt", False) is True


def _has_bearer(request: Request) -> bool:
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and bool(credentials.strip())
