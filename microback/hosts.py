"""Which Host headers the app answers, and whose X-Forwarded-* headers it believes.

Both decide what the app thinks its own URL and the client's address are. A forged Host
poisons password-reset links and caches; a forged X-Forwarded-For defeats throttling by
address. So the Host must be on an allow-list, and forwarded headers are believed only
when the TCP peer is a configured proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

__all__ = ["ForwardedHeaders", "HostAllowList"]

#: Bound on the allowed Host headers remembered (``.example.com`` allows endless subdomains).
_REMEMBERED_HOSTS = 1024


def _split_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostAllowList:
    """Match a request's host against patterns: exact names, ``.example.com``, or ``*``."""

    def __init__(self, patterns: Iterable[str]) -> None:
        patterns = [pattern.strip().lower() for pattern in patterns]
        self.allow_any = "*" in patterns
        self._exact = frozenset(p for p in patterns if not p.startswith("."))
        self._suffixes = tuple(p for p in patterns if p.startswith("."))
        # Host headers already allowed, as sent: most requests carry one of a few, and
        # checking costs as much as routing. Refused ones are not kept: anyone can send them.
        self._seen_allowed: set[str] = set()

    def host_of(self, environ: dict[str, Any]) -> str:
        """Give the host a client asked for (``Host``, or the server name for HTTP/1.0)."""
        return str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")

    def allows(self, environ: dict[str, Any]) -> bool:
        """Tell whether the request's host (port ignored) is allowed."""
        if self.allow_any:
            return True
        given = self.host_of(environ)
        if given in self._seen_allowed:
            return True
        host = _split_port(given)
        allowed = host in self._exact or any(
            host.endswith(s) or host == s[1:] for s in self._suffixes
        )
        if allowed and len(self._seen_allowed) < _REMEMBERED_HOSTS:
            self._seen_allowed.add(given)
        return allowed


class ForwardedHeaders:
    """Apply ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from trusted proxies only.

    The client address is the right-most ``X-Forwarded-For`` entry that is not itself a
    trusted proxy: entries further left were written by the client and may be anything.
    """

    def __init__(self, proxies: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(p, strict=False) for p in proxies]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def apply(self, environ: dict[str, Any]) -> None:
        """Rewrite ``REMOTE_ADDR`` and ``wsgi.url_scheme`` in place when the peer is trusted.

        The originals are kept as ``microback.peer_addr`` and ``microback.peer_scheme``.
        """
        peer = environ.get("REMOTE_ADDR", "")
        if not self._trusted(peer):
            return
        environ["microback.peer_addr"] = peer
        environ["microback.peer_scheme"] = environ.get("wsgi.url_scheme")
        chain = [a.strip() for a in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        for address in reversed([a for a in chain if a]):
            if not self._trusted(address):
                environ["REMOTE_ADDR"] = address
                break
        proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
        if proto in ("http", "https"):
            environ["wsgi.url_scheme"] = proto
