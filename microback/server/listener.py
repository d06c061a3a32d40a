"""Create the listening socket the server accepts connections on.

The server binds its own socket instead of letting gevent do it, for three reasons:

- ``TCP_NODELAY`` must be set on it. A response usually leaves in one ``send()``, but a
  streamed one (and ``100 Continue`` before its response) takes several; without
  ``TCP_NODELAY``, Nagle's algorithm and the client's delayed ACK stall such a write by ~40 ms
  (gevent#1233 measured it on gevent.pywsgi). Linux copies the option to every accepted
  socket, so setting it once here covers all connections.
- A failed bind becomes one :class:`ListenError` with a message a person can act on, raised
  before anything starts.
- Worker processes (a later feature) bind once and share the socket across a fork; a socket
  bound elsewhere goes through :func:`prepare_listener`.
"""

from __future__ import annotations

import errno
import socket

#: Connections the kernel queues while every greenlet slot is taken (gunicorn uses 2048; the
#: kernel caps it at ``net.core.somaxconn``).
DEFAULT_BACKLOG = 2048

_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
    errno.EADDRNOTAVAIL: "address not available on this host",
}


class ListenError(OSError):
    """The server could not bind or listen on the requested address.

    ``str()`` of the error is a complete sentence such as
    ``cannot listen on 127.0.0.1:8000: address already in use``.
    """


def format_address(host: str, port: int) -> str:
    """Return ``host:port``, with IPv6 hosts in brackets as URLs write them."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_listener(host: str, port: int, backlog: int = DEFAULT_BACKLOG) -> socket.socket:
    """Bind a non-blocking TCP socket to *host* and *port*, listening, with TCP_NODELAY set.

    *port* 0 picks a free port; read it back with ``sock.getsockname()[1]``. Raises
    :class:`ListenError` when the address cannot be resolved, bound or listened on.
    """
    where = format_address(host, port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {where}: unknown host ({exc.strerror})") from exc
    family, type_, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        # SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT; it
        # does not let two live servers share a port on Linux.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
        # gevent's accept loop expects a non-blocking listener.
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = _REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {where}: {reason}") from exc
    return sock


def prepare_listener(sock: socket.socket) -> socket.socket:
    """Make a socket bound and listening elsewhere ready to serve: non-blocking, TCP_NODELAY."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock
