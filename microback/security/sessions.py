"""Sessions in a signed cookie: ``request.session``, saved when it changes.

The default session lives entirely in the cookie, signed in itsdangerous's format
(HMAC-SHA256; see ``cookie_signing``), so any number of processes and hosts can serve the
same user with only the shared secret.
The cookie is signed, not encrypted: the user can read what is in it, so keep secrets out.
A cookie that is tampered with, expired, truncated or signed for another purpose is treated
as no cookie at all — an empty session and a normal response.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from werkzeug.wrappers import Response as _WerkzeugResponse

from ..app import App
from ..http import Request, add_vary, json_dumps
from ..http.set_cookie import CookieHeader
from .cookie_signing import CookieSigner

__all__ = ["CookieSessions", "Session", "SessionStore", "SessionTooLarge"]

#: Browsers keep a cookie of up to 4096 bytes, name and attributes (Expires, Max-Age, Path,
#: Domain, SameSite, Secure, HttpOnly: up to ~250 bytes) included; this bounds the value.
MAX_COOKIE_BYTES = 3800
# What signing adds to base64-encoded JSON, with room to spare: a compression mark, the
# timestamp, two separators and an HMAC-SHA256 signature (~52 bytes), and base64 padding.
_SIGNING_ALLOWANCE = 96
#: Keys the framework keeps in the session; they are reset when the session is rotated.
ROTATED_KEYS = ("_csrf",)
#: The cookie's name unless told otherwise; with ``secure=True``, no domain and path ``/``
#: it gets the ``__Host-`` prefix: browsers then refuse it from subdomains and over HTTP.
DEFAULT_COOKIE_NAME = "session"
HOST_PREFIX = "__Host-"
#: Where Auth keeps the user's id: the pages of such a session are per-user.
USER_KEY = "_uid"


def default_cookie_name(secure: bool | None, domain: str | None, path: str) -> str:
    """``__Host-session`` where the browser allows the prefix (always Secure, no Domain,
    ``Path=/``), else ``session``."""
    if secure is True and domain is None and path == "/":
        return HOST_PREFIX + DEFAULT_COOKIE_NAME
    return DEFAULT_COOKIE_NAME


class SessionTooLarge(ValueError):
    """The session no longer fits in a cookie; store the data elsewhere and keep an id."""


class Session(dict[str, Any]):
    """The session of one request: a dict that knows whether it changed.

    Assigning a value that would make the cookie too large raises :class:`SessionTooLarge`
    at once, so the handler that wrote it fails visibly instead of the data being lost.
    Mutating a nested value in place is not seen: assign it again, or set ``modified``.
    """

    def __init__(
        self, data: dict[str, Any], store: SessionStore, *, is_new: bool, key: str | None = None
    ) -> None:
        super().__init__(data)
        self.store = store
        self.is_new = is_new
        #: The identifier a server-side store keeps the session under (None in a cookie).
        self.key = key
        self.modified = False
        #: Set by :meth:`rotate`: a server-side store then issues a new identifier.
        self.rotated = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.store.check_size({**self, key: value})
        super().__setitem__(key, value)
        self.modified = True

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.modified = True

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        merged = {**self}
        merged.update(*args, **kwargs)
        self.store.check_size(merged)
        super().update(merged)
        self.modified = True

    def pop(self, key: str, *default: Any) -> Any:
        self.modified = True
        return super().pop(key, *default)

    def clear(self) -> None:
        super().clear()
        self.modified = True

    def rotate(self) -> None:
        """Renew the session's identity after a privilege change: new id, new CSRF secret.

        Call it on login and on any change of rights, so a value an attacker learned before
        (a CSRF token planted with a session) is worthless afterwards.
        """
        for key in ROTATED_KEYS:
            super().pop(key, None)
        self.modified = True
        self.rotated = True


class SessionStore:
    """What every session store shares: the cookie, and when to write it.

    A store gives requests ``request.session`` (loaded on first use) and, after the handler,
    writes the cookie when the session changed; a request that never reads its session costs
    nothing. Subclasses say how a session is loaded and kept.
    """

    def __init__(
        self,
        app: App,
        *,
        cookie_name: str | None,
        max_age: int,
        secure: bool | None,
        same_site: Literal["Lax", "Strict", "None"],
        domain: str | None,
        path: str,
    ) -> None:
        if same_site == "None" and secure is False:
            raise ValueError("browsers drop SameSite=None cookies that are not Secure")
        self.cookie_name = cookie_name or default_cookie_name(secure, domain, path)
        # The name cookies had before the prefix: still read, and replaced on the next save.
        prefixed = cookie_name is None and self.cookie_name.startswith(HOST_PREFIX)
        self.legacy_cookie_name = DEFAULT_COOKIE_NAME if prefixed else None
        self.max_age = max_age
        self._cookie_header = CookieHeader()
        self.secure = secure
        self.same_site = same_site
        self.domain = domain
        self.path = path
        app.extensions["sessions"] = self
        app.add_request_property("session", self.load)
        app.after_request(self.save)

    def load(self, request: Request) -> Session:
        """Give the request's session; anything invalid or unknown is a new, empty one."""
        raise NotImplementedError

    def cookie(self, request: Request) -> str | None:
        """The session cookie ``request`` sent, under its legacy name if only that one."""
        value = request.cookies.get(self.cookie_name)
        if value is None and self.legacy_cookie_name is not None:
            value = request.cookies.get(self.legacy_cookie_name)
        return value

    def check_size(self, session: dict[str, Any]) -> None:
        """Raise :class:`SessionTooLarge` if ``session`` cannot be kept."""

    def write(self, request: Request, session: Session) -> str | None:
        """Keep a changed session; give the cookie value to send, or None to delete it."""
        raise NotImplementedError

    def save(self, request: Request, response: _WerkzeugResponse) -> None:
        """Write the cookie if the session changed; delete it if it was emptied.

        Changes made by a request that failed with a 5xx are not saved, like the
        transaction that ``atomic_requests`` rolls back. A response that writes the cookie
        gets ``Cache-Control: private`` (``no-store`` once a user is signed in) unless the
        handler set its own, so no shared cache keeps one user's cookie for another.
        """
        session: Session | None = request.__dict__.get("session")
        if session is None:
            return  # never read: nothing to do, and no Vary either
        add_vary(response, "Cookie")
        if response.status_code >= 500:
            return
        legacy = self.legacy_cookie_name
        if legacy is not None and legacy in request.cookies:
            # Move the session to the prefixed name: write it anew, delete the old cookie.
            response.delete_cookie(legacy, path=self.path, httponly=True)
            session.modified = session.modified or bool(session)
        if not session.modified:
            return
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store" if USER_KEY in session else "private"
        value = self.write(request, session)
        secure = request.is_secure if self.secure is None else self.secure
        if value is not None:
            header = self._cookie_header(
                self.cookie_name,
                value,
                max_age=self.max_age,
                path=self.path,
                domain=self.domain,
                secure=secure,
                httponly=True,
                samesite=self.same_site,
            )
            response.headers.add("Set-Cookie", header)
        elif not session.is_new:
            response.delete_cookie(
                self.cookie_name,
                path=self.path,
                domain=self.domain,
                secure=secure,
                httponly=True,
                samesite=self.same_site,
            )


class CookieSessions(SessionStore):
    """Give ``app``'s requests a ``request.session`` kept in a signed cookie.

    ``secret_keys`` rotates keys: the first signs, all verify, so a new key can be put in
    front and an old one dropped a ``max_age`` later without logging anyone out. By default
    the keys are the app's ``secret_key`` then its ``previous_secret_keys``. ``secure=None``
    marks the cookie ``Secure`` when the request came over HTTPS; ``True`` always does (set it
    behind a TLS proxy that does not forward the scheme), and then names it
    ``__Host-session`` unless a ``cookie_name`` or a ``domain`` is given (a cookie named
    ``session`` is still read, and renamed when it is next written).
    """

    def __init__(
        self,
        app: App,
        *,
        secret_keys: Sequence[str] | None = None,
        cookie_name: str | None = None,
        max_age: int = 14 * 24 * 3600,
        secure: bool | None = None,
        same_site: Literal["Lax", "Strict", "None"] = "Lax",
        domain: str | None = None,
        path: str = "/",
        salt: str = "microback.session",
    ) -> None:
        keys = list(secret_keys) if secret_keys else app.secret_keys_for("session cookies")
        if any(not key for key in keys):
            raise ValueError("session secret keys must not be empty")
        self._signer = CookieSigner(keys, salt=salt)
        super().__init__(
            app,
            cookie_name=cookie_name,
            max_age=max_age,
            secure=secure,
            same_site=same_site,
            domain=domain,
            path=path,
        )

    def load(self, request: Request) -> Session:
        """Read the session from the request's cookie; anything invalid is an empty session."""
        raw = self.cookie(request)
        if raw:
            data = self._signer.loads(raw, max_age=self.max_age)
            if isinstance(data, dict):
                return Session(data, self, is_new=False)
        return Session({}, self, is_new=True)

    def dumps(self, session: dict[str, Any]) -> str:
        """Sign ``session`` into a cookie value."""
        return self._signer.dumps(session)

    def check_size(self, session: dict[str, Any]) -> None:
        """Raise :class:`SessionTooLarge` if ``session`` would not fit in the cookie.

        Signing costs as much as the rest of a request, and this runs on every assignment.
        A session whose JSON fits even uncompressed, base64-encoded and signed does not need
        signing to know that; only one near the limit is signed to be measured exactly.
        """
        plain = len(json_dumps(session).encode())
        if plain * 4 // 3 + _SIGNING_ALLOWANCE <= MAX_COOKIE_BYTES:
            return
        size = len(self.dumps(session))
        if size > MAX_COOKIE_BYTES:
            raise SessionTooLarge(
                f"the session would be {size} bytes signed, over the {MAX_COOKIE_BYTES}-byte "
                "cookie limit; keep large data in the database and only its id in the session"
            )

    def write(self, request: Request, session: Session) -> str | None:
        return self.dumps(session) if session else None
