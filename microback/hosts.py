"""Which Host headers the app answers, and whose X-Forwarded-* headers it believes.

Both decide what the app thinks its own URL and the client's address are. A forged Host
poisons password-reset links and caches; a forged X-Forwarded-For defeats throttling by
address. So the Host must be a plain ``name[:port]`` on an allow-list, and forwarded headers
are believed only when the TCP peer is a configured proxy.

The Host is checked whole, not split at its last ``:`` and matched by suffix: werkzeug before
3.1.8 took ``localhost:80@evil.example`` as it came, so ``request.host_url`` became
``http://localhost:80@evil.example/`` — a link to evil.example, with userinfo in front.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["UNIX_PEER", "ForwardedHeaders", "HostAllowList", "host_problem"]

#: Bound on the allowed Host headers remembered (``.example.com`` allows endless subdomains).
_REMEMBERED_HOSTS = 1024


#: A DNS name or IPv4 address: dot-separated labels of letters, digits and hyphens
#: (RFC 1123), a final dot allowed. A subset of RFC 3986's reg-name: the percent-escapes and
#: sub-delims it also allows (``!$&'()*+,;=``) name no host on the Internet, and are what turns
#: a Host into something else once pasted into a URL or a page. werkzeug (3.1.8+) accepts no
#: more than this either, so ``request.host`` is never emptied behind the check's back.
_NAME = re.compile(r"(?:[a-z0-9-]{1,63}\.)*[a-z0-9-]{1,63}\.?", re.ASCII | re.IGNORECASE)
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
#: RFC 1035's limit on a whole name (253 characters, plus the optional final dot).
_MAX_NAME = 254
#: A port: 1 to 65535, without leading zeros (0 is no port a client can connect to).
_PORT = re.compile(r"[1-9][0-9]{0,4}", re.ASCII)
_MAX_PORT = 65535


def host_problem(value: str) -> str | None:
    """Say what keeps ``value`` from being a Host of the form ``name[:port]``, or give None.

    ``name`` is a DNS name, an IPv4 address or an IPv6 address in brackets (RFC 9110 §7.2,
    RFC 3986 §3.2.2); ``port`` is 1 to 65535. Anything else — userinfo (``@``), a path,
    spaces, backslashes, non-ASCII, an empty or out-of-range port — is refused.
    """
    if not value:
        return "it is empty"
    if not value.isascii():
        return "it has non-ASCII characters; send an international name as punycode (xn--...)"
    if value.startswith("["):
        address, bracket, rest = value[1:].partition("]")
        if not bracket:
            return "the IPv6 address has no closing ']'"
        if not _is_ipv6(address):
            return f"[{address}] is not an IPv6 address"
        if rest and not rest.startswith(":"):
            return "only ':port' may follow the IPv6 address"
        port = rest[1:] if rest else None
    else:
        bad = next((c for c in value if c not in _NAME_CHARACTERS and c != ":"), None)
        if bad is not None:
            return f"{bad!r} cannot be part of a host name (letters, digits, '-' and '.')"
        name, colon, port_text = value.partition(":")
        if ":" in port_text:
            return "an IPv6 address must be written in brackets, as in [::1]:8000"
        if not name:
            return "the name before ':' is empty"
        if len(name) > _MAX_NAME:
            return f"the name is longer than {_MAX_NAME - 1} characters"
        if not _NAME.fullmatch(name):
            return "the name has an empty label ('..') or one longer than 63 characters"
        port = port_text if colon else None
    if port is not None and not (_PORT.fullmatch(port) and int(port) <= _MAX_PORT):
        shown = repr(port) if port else "empty"
        return f"the port is {shown}; give a number from 1 to {_MAX_PORT}, or no ':'"
    return None


def _is_ipv6(text: str) -> bool:
    if "%" in text:  # a zone (fe80::1%eth0) means nothing to another machine
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _as_sent(header: str) -> str:
    """A header as the client typed it: WSGI gives its bytes as latin-1 (PEP 3333), so a UTF-8
    name would read ``bÃ¼cher`` in the answer; one that is not UTF-8 stays as given."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return header


def _name_of(host: str) -> str:
    """The name of a ``name[:port]``, lower case, without its port or final dot."""
    name = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    return name.lower().removesuffix(".")


class HostAllowList:
    """Check a request's host: a valid ``name[:port]``, matching a pattern (``example.com``,
    ``.example.com`` for it and its subdomains, or ``*`` for any name)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        # Matched against names without their final dot, so written without one too.
        patterns = [pattern.strip().lower().removesuffix(".") for pattern in patterns]
        self.allow_any = "*" in patterns
        self._exact = frozenset(p for p in patterns if not p.startswith("."))
        self._suffixes = tuple(p for p in patterns if p.startswith("."))
        # Host headers already allowed, as sent: most requests carry one of a few, and
        # checking costs as much as routing. Refused ones are not kept: anyone can send them.
        self._seen_allowed: set[str] = set()

    def host_of(self, environ: dict[str, Any]) -> str:
        """Give the host a client asked for (``Host``, or the server name for HTTP/1.0)."""
        header = environ.get("HTTP_HOST")
        return str(environ.get("SERVER_NAME") or "") if header is None else str(header)

    def refusal(self, environ: dict[str, Any]) -> str | None:
        """Say why the request's host is refused, naming what to fix; None when it is served.

        The ``Host`` header must be a valid ``name[:port]`` whatever the patterns, ``*``
        included. Without one (HTTP/1.0), the server's own name is matched: it is not the
        client's to choose.
        """
        header = environ.get("HTTP_HOST")
        if header in self._seen_allowed:
            return None
        given = self.host_of(environ)
        if header is not None:
            problem = host_problem(header)
            if problem is not None:
                shown = _as_sent(header[:100])
                return f"the Host header {shown!r} is not a valid name[:port]: {problem}"
        if not self.allow_any:
            name = _name_of(given)
            if name not in self._exact and not any(
                name.endswith(s) or name == s[1:] for s in self._suffixes
            ):
                return (
                    f"the host {given[:100]!r} is not served here; add it to the "
                    "allowed_hosts setting (MICROBACK_ALLOWED_HOSTS)"
                )
        if header is not None and len(self._seen_allowed) < _REMEMBERED_HOSTS:
            self._seen_allowed.add(header)
        return None


#: The ``trusted_proxies`` entry that trusts a peer connected over a Unix socket.
UNIX_PEER = "unix"


class ForwardedHeaders:
    """Apply ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from trusted proxies only.

    The client address is the right-most ``X-Forwarded-For`` entry that is not itself a
    trusted proxy: entries further left were written by the client and may be anything.
    The entry ``unix`` trusts a peer on a Unix socket, which WSGI servers report with an
    empty ``REMOTE_ADDR`` (only a proxy on the same host can connect there, and the
    socket file's permissions say which).
    """

    def __init__(self, proxies: Iterable[str]) -> None:
        proxies = list(proxies)
        self._unix = UNIX_PEER in proxies
        self._networks = [ipaddress.ip_network(p, strict=False) for p in proxies if p != UNIX_PEER]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def _trusted_peer(self, peer: str) -> bool:
        return self._unix if not peer else self._trusted(peer)

    def apply(self, environ: dict[str, Any]) -> None:
        """Rewrite ``REMOTE_ADDR`` and ``wsgi.url_scheme`` in place when the peer is trusted.

        The originals are kept as ``microback.peer_addr`` and ``microback.peer_scheme``.
        """
        peer = environ.get("REMOTE_ADDR") or ""
        if not self._trusted_peer(peer):
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
