"""CORS: let pages on listed origins call this app from the browser and read its answers.

Browsers keep a page from reading responses of another origin unless the response says it
may (``Access-Control-Allow-Origin``), and before a request a plain form could not send
(``PUT``, JSON, an ``Authorization`` header) they ask first with a *preflight*: an
``OPTIONS`` request with ``Access-Control-Request-Method``. :class:`Cors` answers both from
an allow-list of exact origins.

- A preflight from an allowed origin is answered ``200`` with an empty body and the allowed
  methods, headers and ``Max-Age``, before any handler runs, for every path (also one that
  does not exist, so the real request goes on to get its 404 with CORS headers).
- A preflight from any other origin is answered like any ``OPTIONS`` request, with no CORS
  headers: the browser then refuses to send the real request. The refusal is the browser's,
  and nothing is said to a foreign page about the policy.
- Every other response to an allowed origin, errors included (a 404 or 500 must reach the
  page as such, not as an opaque network failure), carries ``Access-Control-Allow-Origin``
  with that origin, ``-Credentials`` when enabled, and ``-Expose-Headers``.
- With an allow-list the headers depend on ``Origin``, so every response says
  ``Vary: Origin``: a shared cache must not hand one origin's answer to another.

``*`` (any origin) is allowed only without credentials: a response that any site may read
with the user's cookies is readable by every site the user visits, and browsers refuse the
combination anyway. CORS lets pages *read*; it does not stop cross-site *writes* — that is
:class:`~microback.security.csrf.Csrf`'s job, which needs the same origins in
``trusted_origins``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from werkzeug.wrappers import Response as _WerkzeugResponse

from ..app import App
from ..http import Request, Response, add_vary
from .csrf import normalize_origin

__all__ = ["DEFAULT_HEADERS", "DEFAULT_METHODS", "Cors"]

DEFAULT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: Content-Type for JSON bodies, Authorization for API tokens, X-CSRF-Token for Csrf.
DEFAULT_HEADERS = ("Authorization", "Content-Type", "X-CSRF-Token")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (RFC 9110 §5.6.2)


def _is_preflight(request: Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def _names(setting: str, values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{setting} must be a list such as [{values!r}], not a string")
    names = tuple(values)
    for name in names:
        if not isinstance(name, str) or name == "*" or not _TOKEN.fullmatch(name):
            raise ValueError(
                f"{setting}: {name!r} is not a header or method name; "
                "'*' is not accepted either: list the names"
            )
    return names


def _origins(values: Iterable[str], allow_credentials: bool) -> frozenset[str]:
    if isinstance(values, str):
        raise TypeError(f"allow_origins must be a list such as [{values!r}], not a string")
    given = list(values)
    if not given:
        raise ValueError("allow_origins is empty: list the origins, such as 'https://app.example'")
    if "*" in given:
        if allow_credentials:
            raise ValueError(
                "allow_origins=['*'] with allow_credentials=True would let every site read "
                "responses made with the user's cookies (and browsers refuse it); "
                "list the origins instead"
            )
        if len(given) > 1:
            raise ValueError("allow_origins: '*' already allows every origin; list nothing else")
        return frozenset(given)
    origins = set()
    for value in given:
        if value == "null":
            raise ValueError(
                "allow_origins: 'null' is the origin of every sandboxed frame and file: page; "
                "allowing it allows all of them"
            )
        origin = normalize_origin(value) if isinstance(value, str) else None
        if origin is None:
            raise ValueError(
                f"allow_origins: {value!r} is not an origin; write scheme://host[:port] "
                "with no path or trailing slash, such as 'https://app.example'"
            )
        origins.add(origin)
    return frozenset(origins)


class Cors:
    """Answer CORS preflights and mark responses readable by the ``allow_origins``.

    ``allow_origins`` are exact origins (``"https://app.example"``, ``"http://localhost:5173"``)
    or ``["*"]``. ``allow_credentials=True`` lets those pages send cookies and read the
    answers; it cannot be combined with ``"*"``. A bad configuration raises ``ValueError``
    here, at start-up.
    """

    def __init__(
        self,
        app: App,
        *,
        allow_origins: Iterable[str],
        allow_credentials: bool = False,
        allow_methods: Iterable[str] = DEFAULT_METHODS,
        allow_headers: Iterable[str] = DEFAULT_HEADERS,
        expose_headers: Iterable[str] = (),
        max_age: int = 600,
    ) -> None:
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ValueError(f"max_age is in seconds, a whole number >= 0; got {max_age!r}")
        self.allow_origins = _origins(allow_origins, allow_credentials)
        self.any_origin = self.allow_origins == {"*"}
        self.allow_credentials = allow_credentials
        methods = [m.upper() for m in _names("allow_methods", allow_methods)]
        self._preflight_headers = {
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": ", ".join(_names("allow_headers", allow_headers)),
            "Access-Control-Max-Age": str(max_age),
        }
        self._expose_headers = ", ".join(_names("expose_headers", expose_headers))
        app.extensions["cors"] = self
        app.before_request(self.answer_preflight)
        app.after_request(self.add_headers)

    def allows(self, origin: str | None) -> bool:
        """Tell whether a page on ``origin`` may call this app."""
        return origin is not None and (self.any_origin or origin in self.allow_origins)

    def answer_preflight(self, request: Request) -> Response | None:
        """The ``before_request`` hook: answer an allowed preflight before any handler runs.

        The app answers ``OPTIONS`` for a route that does not list it before hooks run;
        :meth:`add_headers` completes that answer in the same way.
        """
        if not _is_preflight(request) or not self.allows(request.headers.get("Origin")):
            return None
        return Response(b"", 200)  # like the app's own OPTIONS answer; any 2xx will do

    def add_headers(self, request: Request, response: _WerkzeugResponse) -> None:
        """The ``after_request`` hook: add the CORS headers for the request's origin."""
        if not self.any_origin:
            add_vary(response, "Origin")
        origin = request.headers.get("Origin")
        if not self.allows(origin):
            return
        preflight = _is_preflight(request)
        if preflight and not 200 <= response.status_code < 300:
            return  # a refused preflight (e.g. a disallowed Host) stays refused
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = "*" if self.any_origin else str(origin)
        if self.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        if preflight:
            headers.update(self._preflight_headers)
        elif self._expose_headers:
            headers["Access-Control-Expose-Headers"] = self._expose_headers
