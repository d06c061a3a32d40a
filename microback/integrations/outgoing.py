"""``post_json``-style outgoing HTTP with the timeout always set, on the standard library.

Under ``microback serve`` and ``microback worker`` gevent has patched ``socket`` and ``ssl``
before anything is imported, so ``http.client`` waits cooperatively: a slow partner holds one
greenlet, not the process. No redirect is followed (a webhook or payment call that is
redirected is an error to see, not to follow) and at most ``max_body`` bytes of the answer are
read, so a misbehaving server can neither stall nor flood the caller.

The host's name is resolved here, and the connection goes to the addresses found, so that a
check of those addresses (``allow_internal_addresses=False``, what :class:`WebhookSender`
does with URLs it did not choose) holds for the connection made: a name that resolves to a
public address when checked and to 127.0.0.1 when connecting (DNS rebinding) cannot slip
through.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["InternalAddressError", "OutgoingError", "OutgoingResponse", "is_internal", "send"]

USER_AGENT = "microback"


class OutgoingError(OSError):
    """The request could not be made or got no answer (refused, timed out, bad URL)."""


class InternalAddressError(OutgoingError):
    """The URL's host is (or resolves to) an internal address, and those were not allowed."""


@dataclass(frozen=True)
class OutgoingResponse:
    """What came back: the status, the headers (lower-case names) and the first bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


def send(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
    max_body: int = 64 * 1024,
    context: ssl.SSLContext | None = None,
    spans: Any = None,
    allow_internal_addresses: bool = True,
) -> OutgoingResponse:
    """Send one request and read its answer, within ``timeout`` seconds for each socket wait.

    ``timeout`` has no default on purpose: a call without one can wait for ever. Raises
    :class:`OutgoingError` when no answer came; any status is a response (check it). With
    *spans* (the app's ``microback.tracing.Tracing``) the call is a client span whose context
    goes with the request (``traceparent``). With ``allow_internal_addresses=False`` a host
    that is or resolves to a loopback, private, link-local (cloud metadata), shared or
    reserved address is refused with :class:`InternalAddressError` before anything is sent:
    for URLs given by users (see :func:`is_internal`).
    """
    internal = allow_internal_addresses
    send_one = functools.partial(
        _send, timeout=timeout, max_body=max_body, context=context, internal=internal
    )
    if spans is None:
        return send_one(method, url, body, headers or {})
    headers = dict(headers or {})
    with spans.outgoing(method, url, headers) as span:
        response = send_one(method, url, body, headers)
        span.set_attribute("http.response.status_code", response.status)
        return response


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: an IPv4 address in the last 32 bits


def is_internal(address: str) -> bool:
    """True for an IP address a server's own network answers on, not the internet's.

    Loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16, where
    clouds serve instance metadata and credentials, and fe80::/10), shared (100.64/10),
    unspecified, multicast and reserved addresses; an IPv6 address carrying an IPv4 one
    (``::ffff:127.0.0.1``, 6to4, Teredo, NAT64's ``64:ff9b::/96``) is judged by the IPv4
    address it reaches.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0)
    if isinstance(ip, ipaddress.IPv6Address):
        carried = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if carried is None and ip in _NAT64:
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None:
            ip = carried
    return not ip.is_global or ip.is_multicast


def _addresses(host: str, port: int, internal: bool) -> list[str]:
    """The addresses ``host`` resolves to; all of them must pass unless ``internal``."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OutgoingError(f"cannot resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not internal:
        # Every address, not just one: a name that mixes public and internal addresses is
        # refused rather than tried until it reaches the internal one.
        refused = [address for address in addresses if is_internal(address)]
        if refused:
            raise InternalAddressError(
                f"refused to send to {host}: {refused[0]} is an internal address (loopback, "
                "private, link-local or reserved), and internal addresses are not allowed here"
            )
    return addresses


class _Connection(http.client.HTTPConnection):
    """An HTTP connection to addresses resolved and checked beforehand, not to its host's name
    resolved again (which could give another address, DNS rebinding); TLS, when ``tls`` is
    given, verifies the certificate for the URL's host name."""

    def __init__(
        self,
        host: str,
        port: int,
        addresses: list[str],
        timeout: float,
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.default_port = 443 if tls is not None else 80  # no ":443" in the Host header
        self.addresses = addresses
        self.tls = tls

    def connect(self) -> None:
        error: OSError | None = None
        for address in self.addresses:  # in getaddrinfo's order, as create_connection does
            try:
                sock = socket.create_connection((address, self.port), self.timeout)
                break
            except OSError as exc:
                error = exc
        else:
            raise error or OSError("no address to connect to")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock


def _tls_context() -> ssl.SSLContext:
    """http.client's default for HTTPS: the system's trust store, host names checked."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _send(
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    *,
    timeout: float,
    max_body: int,
    context: ssl.SSLContext | None,
    internal: bool,
) -> OutgoingResponse:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutgoingError(f"cannot send to {url!r}: only http:// and https:// URLs")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise OutgoingError(f"cannot send to {parts.hostname}: {exc}") from None
    if timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    addresses = _addresses(parts.hostname, port, internal)
    tls = (context or _tls_context()) if parts.scheme == "https" else None
    connection = _Connection(parts.hostname, port, addresses, timeout, tls)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = {"User-Agent": USER_AGENT, **headers}
    try:
        connection.request(method, target, body=body, headers=sent)
        answer = connection.getresponse()
        data = answer.read(max_body)
        return OutgoingResponse(
            answer.status, {k.lower(): v for k, v in answer.getheaders()}, data
        )
    except (OSError, http.client.HTTPException) as exc:
        # The host only: a URL's user, password or query may be secrets, and logs outlive them.
        where = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        raise OutgoingError(f"{method} {where}: {exc or type(exc).__name__}") from exc
    finally:
        connection.close()
