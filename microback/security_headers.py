"""The security headers every response gets unless it sets its own.

Defaults follow Django's SecurityMiddleware and the OWASP secure headers project, taking the
stricter where they differ: no MIME sniffing, no framing, referrers only to the same origin,
an isolated browsing context, and HSTS for a year on HTTPS responses.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .header_defaults import NOSNIFF, framing_headers
from .settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse

__all__ = ["SecurityHeaders"]

#: Bound on the header-name sets remembered (names come from the app, not from clients).
_REMEMBERED_HEADER_SETS = 256
_name = itemgetter(0)


class SecurityHeaders:
    """Headers computed once from the settings and added to each response."""

    def __init__(self, settings: Settings) -> None:
        always = [NOSNIFF]
        # Both headers say who may frame the page; a response that sets either decides alone.
        self.framing = framing_headers(settings.frame_options)
        if settings.referrer_policy:
            always.append(("Referrer-Policy", settings.referrer_policy))
        if settings.cross_origin_opener_policy:
            always.append(("Cross-Origin-Opener-Policy", settings.cross_origin_opener_policy))
        self.always = always
        # HSTS over plain HTTP is ignored by browsers and would only mislead (RFC 6797 §7.2).
        self.https_only = (
            [("Strict-Transport-Security", f"max-age={settings.hsts_seconds}")]
            if settings.hsts_seconds
            else []
        )
        # What is missing, by the names a response sets: for plain HTTP and for HTTPS.
        self._missing_by_names: tuple[dict[tuple[str, ...], list[tuple[str, str]]], ...] = ({}, {})

    def missing(self, headers: list[tuple[str, str]], *, secure: bool) -> list[tuple[str, str]]:
        """Give the security headers that a response's header list does not set itself.

        Remembered by the names the response sets: an app sends a handful of distinct header
        sets, and working it out costs as much as routing the request.
        """
        remembered = self._missing_by_names[secure]
        names = tuple(map(_name, headers))
        added = remembered.get(names)
        if added is None:
            added = self._find_missing(headers, secure=secure)
            if len(remembered) < _REMEMBERED_HEADER_SETS:
                remembered[names] = added
        return added

    def _find_missing(
        self, headers: list[tuple[str, str]], *, secure: bool
    ) -> list[tuple[str, str]]:
        present = {name.lower() for name, _ in headers}
        added = [(n, v) for n, v in self.always if n.lower() not in present]
        if "x-frame-options" not in present and "content-security-policy" not in present:
            added.extend(self.framing)
        if secure:
            added.extend((n, v) for n, v in self.https_only if n.lower() not in present)
        return added

    def wrap(self, start_response: StartResponse, *, secure: bool) -> StartResponse:
        """Give a ``start_response`` that adds the missing headers to every response.

        Added at the WSGI level, to the plain list of tuples, because werkzeug's ``Headers``
        checks and sets names in linear time with case folding: applied there, five headers
        cost a third of a small request.
        """

        def start(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            headers.extend(self.missing(headers, secure=secure))
            return start_response(status, headers, exc_info)

        return start
