"""What ``microback check --deploy`` looks for: settings that are fine on a laptop only.

Each finding names the setting and what to do. The checks read the app's settings and the
extensions it installed; they change nothing and send no request.
"""

from __future__ import annotations

from typing import NamedTuple

from ..app import App

__all__ = ["Finding", "deployment_findings"]

#: Shorter keys can be brute-forced offline from one signed cookie.
MIN_SECRET_LENGTH = 32
#: Values copied from tutorials; a key anyone can read signs nothing.
WELL_KNOWN_SECRETS = frozenset(
    {"secret", "changeme", "change-me", "dev", "development", "test", "secret-key", "secret_key"}
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


class Finding(NamedTuple):
    """One problem: the setting it concerns and the advice."""

    setting: str
    message: str


def deployment_findings(app: App) -> list[Finding]:
    """List what is unsafe about serving ``app`` on the Internet as configured."""
    settings = app.settings
    found: list[Finding] = []
    if settings.debug:
        found.append(Finding("debug", "debug is on: 500 responses show tracebacks; turn it off"))
    if settings.secret_key_generated:
        found.append(
            Finding(
                "secret_key",
                "no secret key is set: a random one is made at start-up, so sessions end at "
                "every restart and differ between hosts; set MICROBACK_SECRET_KEY",
            )
        )
    elif (
        len(settings.secret_key) < MIN_SECRET_LENGTH
        or settings.secret_key.lower() in WELL_KNOWN_SECRETS
    ):
        found.append(
            Finding(
                "secret_key",
                f"the secret key is weak: use at least {MIN_SECRET_LENGTH} random characters "
                '(python -c "import secrets; print(secrets.token_urlsafe(48))")',
            )
        )
    hosts = set(settings.allowed_hosts)
    if "*" in hosts:
        found.append(
            Finding(
                "allowed_hosts",
                "allowed_hosts is '*': any Host header is believed; list your domains",
            )
        )
    elif hosts <= LOCAL_HOSTS:
        found.append(
            Finding(
                "allowed_hosts",
                "allowed_hosts lists only local names: set your domain "
                "(MICROBACK_ALLOWED_HOSTS=example.com)",
            )
        )
    if not settings.hsts_seconds:
        found.append(Finding("hsts_seconds", "HSTS is off: browsers may be downgraded to HTTP"))
    if not settings.frame_options:
        found.append(Finding("frame_options", "framing is allowed: the app can be clickjacked"))
    sessions = app.extensions.get("sessions")
    if sessions is not None and sessions.secure is False:
        found.append(
            Finding("sessions.secure", "session cookies are sent over plain HTTP (secure=False)")
        )
    return found
