"""Create the listening sockets the server accepts connections on: TCP and Unix.

The server binds its own sockets instead of letting gevent do it, for three reasons:

- ``TCP_NODELAY`` must be set on it. A response usually leaves in one ``send()``, but a
  streamed one (and ``100 Continue`` before its response) takes several; without
  ``TCP_NODELAY``, Nagle's algorithm and the client's delayed ACK stall such a write by ~40 ms
  (gevent#1233 measured it on gevent.pywsgi). Linux copies the option to every accepted
  socket, so setting it once here covers all connections.
- A failed bind becomes one :class:`ListenError` with a message a person can act on, raised
  before anything starts.
- Worker processes share the sockets: the master binds once, before it forks, and each worker
  accepts from the same kernel queue. A socket bound elsewhere goes through
  :func:`prepare_listener`.

Addresses are written as ``--bind`` takes them: ``HOST:PORT``, ``[IPv6]:PORT`` or
``unix:/path`` (:func:`parse_bind`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from dataclasses import dataclass

#: Connections the kernel queues while every greenlet slot is taken (gunicorn uses 2048; the
#: kernel caps it at ``net.core.somaxconn``).
DEFAULT_BACKLOG = 2048

_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
    errno.EADDRNOTAVAIL: "address not available on this host",
}
_UNIX_REASONS = {
    errno.ENOENT: "its directory does not exist",
    errno.EACCES: "permission denied (the directory must be writable by this user)",
    errno.ENOTDIR: "a part of the path is not a directory",
}


class ListenError(OSError):
    """The server could not bind or listen on the requested address.

    ``str()`` of the error is a complete sentence such as
    ``cannot listen on 127.0.0.1:8000: address already in use``.
    """


@dataclass(frozen=True)
class Address:
    """Where to listen: a TCP *host* and *port*, or the *path* of a Unix socket."""

    host: str = ""
    port: int = 0
    path: str | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return "unix:" + self.path
        return format_address(self.host, self.port)


def format_address(host: str, port: int) -> str:
    """Return ``host:port``, with IPv6 hosts in brackets as URLs write them."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_bind(text: str) -> Address:
    """Parse ``HOST:PORT``, ``[IPv6]:PORT`` or ``unix:/path``; raise ValueError saying why not."""
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if not path:
            raise ValueError("'unix:' needs a path, as in unix:/run/app.sock")
        return Address(path=path)
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"{text!r} is not an address; write IPv6 as [::1]:8000")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise ValueError(f"{text!r} has no port; use HOST:PORT, [IPv6]:PORT or unix:PATH")
        if ":" in host:
            raise ValueError(f"{text!r}: put an IPv6 address in brackets, as in [::1]:8000")
    if not host:
        raise ValueError(
            f"{text!r} has no host; use 0.0.0.0:PORT for every interface, "
            "127.0.0.1:PORT for this host only"
        )
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return Address(host=host, port=int(port_text))


def bind_address(address: Address, backlog: int = DEFAULT_BACKLOG) -> socket.socket:
    """Bind and listen on *address* (see :func:`bind_listener` and :func:`bind_unix`)."""
    if address.path is not None:
        return bind_unix(address.path, backlog)
    return bind_listener(address.host, address.port, backlog)


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
        if family == socket.AF_INET6:
            # IPv6 only, as nginx does: Linux's dual-stack default would make "[::]:8000"
            # take IPv4's 0.0.0.0:8000 too, so "--bind 0.0.0.0:8000 --bind [::]:8000" failed.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
        # gevent's accept loop expects a non-blocking listener.
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = _REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {where}: {reason}") from exc
    return sock


def bind_unix(path: str, backlog: int = DEFAULT_BACKLOG) -> socket.socket:
    """Bind a non-blocking Unix stream socket at *path*, listening.

    A socket file left behind by a server that is gone is replaced; one that a live server
    still accepts on is "address already in use", and any other file in the way is an error
    too (never deleted). The file gets the permissions of the process's umask: the proxy in
    front needs write permission on it to connect. :func:`remove_unix_socket` removes it.
    """
    where = "unix:" + path
    _remove_stale_socket(path, where)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        code = exc.errno or 0
        reason = _UNIX_REASONS.get(code) or _REASONS.get(code) or exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {where}: {reason}") from exc
    return sock


def _remove_stale_socket(path: str, where: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ListenError(f"cannot listen on {where}: {exc.strerror}") from exc
    if not stat.S_ISSOCK(mode):
        raise ListenError(f"cannot listen on {where}: a file that is not a socket is in the way")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody accepts on it: left by a server that was killed
            return
    raise ListenError(f"cannot listen on {where}: address already in use")


def prepare_listener(sock: socket.socket) -> socket.socket:
    """Make a socket bound and listening elsewhere ready to serve: non-blocking, TCP_NODELAY."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def listener_address(sock: socket.socket) -> Address:
    """The address *sock* is bound to (the real port when it was bound to port 0)."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return Address(path=name if isinstance(name, str) else name.decode())
    return Address(host=str(name[0]), port=int(name[1]))


def listener_url(address: Address, tls: bool = False) -> str:
    """``http://host:port`` (``https`` with *tls*) for a TCP address, ``unix:/path`` otherwise."""
    if address.path is not None:
        return str(address)
    return f"{'https' if tls else 'http'}://{address}"


def remove_unix_socket(address: Address) -> None:
    """Remove the file of a Unix socket this process bound, once it has stopped serving."""
    if address.path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address.path)
