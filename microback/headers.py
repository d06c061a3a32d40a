"""The security headers every response gets unless it sets its own.

Defaults follow Django's SecurityMiddleware and the OWASP secure headers project, taking the
stricter where they differ: no MIME sniffing, no framing, referrers only to the same origin,
an isolated browsing context, and HSTS for a year on HTTPS responses.
"""

from __future__ import annotations

from werkzeug.wrappers import Response

from .settings import Settings

__all__ = ["SecurityHeaders"]


class SecurityHeaders:
    """Headers computed once from the settings and added to each response."""

    def __init__(self, settings: Settings) -> None:
        always = [("X-Content-Type-Options", "nosniff")]
        # Both headers say who may frame the page; a response that sets either decides alone.
        self.framing: list[tuple[str, str]] = []
        if settings.frame_options:
            self.framing.append(("X-Frame-Options", settings.frame_options))
            if settings.frame_options.upper() == "DENY":
                self.framing.append(("Content-Security-Policy", "frame-ancestors 'none'"))
            elif settings.frame_options.upper() == "SAMEORIGIN":
                self.framing.append(("Content-Security-Policy", "frame-ancestors 'self'"))
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

    def apply(self, response: Response, *, secure: bool) -> None:
        """Add each header the response does not already have."""
        headers = response.headers
        for name, value in self.always:
            if name not in headers:
                headers[name] = value
        if "X-Frame-Options" not in headers and "Content-Security-Policy" not in headers:
            headers.extend(self.framing)
        if secure:
            for name, value in self.https_only:
                if name not in headers:
                    headers[name] = value
