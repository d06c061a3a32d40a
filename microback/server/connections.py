"""Track which connections are idle, so a full server can free a place for a new client.

A keep-alive connection waiting for its next request is blocked in ``recv()``. Every
connection registers itself while it waits like that; when a new connection takes the last
place, the one idle the longest is woken with an end-of-file and closes.

A graceful stop does not close idle connections: their client may be sending its next request
at that very moment, and a client that does not retry (``http.client`` does not) would lose it.
Each one is left to its keep-alive timeout, and a request that arrives meanwhile is answered
with ``Connection: close``. A stop therefore lasts at least until the connections that were
idle when it began reach their keep-alive timeout (5 s by default), or their clients close.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Protocol


class IdleConnection(Protocol):
    """What the registry needs from a connection handler."""

    def close_if_idle(self) -> bool:
        """Close the connection unless the client has already started sending a request.

        Return whether it was closed.
        """


class Connections:
    """Registry shared by the server and its connections.

    ``draining`` turns true when the server starts stopping: from then on, every response
    carries ``Connection: close``, so each connection serves one more request at most.
    """

    def __init__(self) -> None:
        self.draining = False
        #: Connections waiting for a request, longest waiting first (a dict keeps order).
        self.idle: dict[IdleConnection, None] = {}

    def drain(self) -> None:
        """Answer one more request at most on each open connection (see the module docstring)."""
        self.draining = True

    def make_room(self) -> None:
        """Close the keep-alive connection idle the longest, when every place is taken.

        Otherwise a full server would leave new clients in the accept queue until some idle
        client's keep-alive timeout (nginx does the same). One that has not sent its first
        request yet is left alone, within its header timeout.
        """
        for conn in list(self.idle):
            if conn.close_if_idle():
                return


def has_pending_input(sock: socket.socket) -> bool:
    """Return whether bytes (or EOF) are waiting to be read on *sock*, without blocking."""
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True  # TLS: bytes already decrypted, waiting in OpenSSL's buffer
    try:
        _raw(sock).recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True  # a broken connection: let the reader see the error and finish
    return True


def wake_with_eof(sock: socket.socket) -> None:
    """Make a ``recv()`` blocked on *sock* return ``b""`` (the connection is closing)."""
    # On the real socket: gevent's SSLSocket.shutdown() drops its TLS state first, and the
    # greenlet reading from it would then fail with a ValueError instead of seeing EOF.
    with contextlib.suppress(OSError):  # already closed by the client
        _raw(sock).shutdown(socket.SHUT_RDWR)


def _raw(sock: socket.socket) -> socket.socket:
    # gevent wraps the real socket; the real one's recv() does not wait for data.
    raw: socket.socket = getattr(sock, "_sock", sock)
    return raw
