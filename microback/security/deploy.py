"""What ``microback check --deploy`` looks for: settings that are fine on a laptop only.

Each finding names the setting and what to do. The checks read the app's settings and the
extensions it installed; they change nothing and send no request.
"""

from __future__ import annotations

from typing import NamedTuple

from ..app import App

__all__ = ["Finding", "deployment_findings", "secret_key_weakness"]

#: Bytes (UTF-8). Shorter keys can be brute-forced offline from one signed cookie.
MIN_SECRET_LENGTH = 32
#: Django's rule (security.W009): a key made of fewer different characters was typed, not
#: drawn at random ("x" * 32 is 32 bytes and worthless).
MIN_DISTINCT_CHARACTERS = 5
#: How much of a key the repetition rule reads: a random key repeats almost none of its
#: 3-character pieces there (64 random hex digits: half a repeat on average), a typed one most.
#: A longer window would count the chance repeats of very long random keys as typing.
REPEAT_WINDOW = 64
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


class Finding(NamedTuple):
    """One problem: the setting it concerns and the advice."""

    setting: str
    message: str


def secret_key_weakness(key: str) -> str | None:
    """Say why ``key`` is obviously too weak to sign with, without quoting it; else None.

    Four simple rules, none a measure of real entropy: at least ``MIN_SECRET_LENGTH`` bytes
    (which also rules out "secret" and "changeme"), at least ``MIN_DISTINCT_CHARACTERS``
    different characters, not one shorter string repeated ("changeme" * 4), and not mostly
    repeated text (``"changeme" + "x" * 24``, ``"Password1" * 4 + "!"``: fewer different
    3-character pieces than half their number). A key from ``secrets.token_urlsafe(32)``
    passes all four.
    """
    size = len(key.encode())
    if size < MIN_SECRET_LENGTH:
        return f"{size} bytes"
    distinct = len(set(key))
    if distinct < MIN_DISTINCT_CHARACTERS:
        return f"only {distinct} different character{'s' if distinct > 1 else ''}"
    if key in (key + key)[1:-1]:  # true exactly when key is a shorter string repeated
        return "a shorter string repeated"
    window = key[:REPEAT_WINDOW]
    pieces = len(window) - 2
    if len({window[i : i + 3] for i in range(pieces)}) < pieces / 2:
        return "mostly repeated text"
    return None


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
    elif (weakness := secret_key_weakness(settings.secret_key)) is not None:
        found.append(
            Finding(
                "secret_key",
                f"the secret key is weak ({weakness}): use at least {MIN_SECRET_LENGTH} "
                'random characters (python -c "import secrets; print(secrets.token_urlsafe(48))")',
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
    elif sessions is not None and sessions.secure is None and not settings.trusted_proxies:
        found.append(
            Finding(
                "sessions.secure",
                "session cookies are Secure only on requests that arrive over HTTPS, and "
                "behind a TLS proxy that is not in trusted_proxies every request looks like "
                "plain HTTP: set MICROBACK_TRUSTED_PROXIES to the proxy's address, or make "
                "the sessions with secure=True",
            )
        )
    return found
