"""Track the connections waiting on their client, so a full server can free a place.

A connection waiting for its client is blocked in ``recv()``: idle between keep-alive
requests, or waiting for (more of) a request head, the first one included. Each registers
itself while it waits. When a new connection takes the last place (``--connections``), the
server closes some of them, so that the clients waiting in the accept queue get in:

1. first the heads that progress least, the slowest in bytes per second since the head
   began (or since the connection was accepted, for one that has sent nothing), up to
   :data:`EVICTION_BATCH` at once; heads younger than :data:`EVICTION_GRACE` go last, the
   youngest last of all, as their client may simply not have sent its first packet yet. Each
   is answered 503 and closed.
   Slowloris clients, which dribble their heads, are the slowest of all by far: with
   ``--connections 1000`` and 2,000 of them, a complete request took its place within a
   second, where closing idle keep-alive clients first had left it in the queue for the whole
   header timeout.
2. otherwise the keep-alive connection idle the longest (nginx does the same), woken with an
   end-of-file; its client, a real one, only has to open a new connection.

A graceful stop does not close idle connections: their client may be sending its next request
at that very moment, and a client that does not retry (``http.client`` does not) would lose it.
Each one is left to its keep-alive timeout, and a request that arrives meanwhile is answered
with ``Connection: close``. A stop therefore lasts at least until the connections that were
idle when it began reach their keep-alive timeout (5 s by default), or their clients close.
"""

from __future__ import annotations

import contextlib
import heapq
import socket
import time
from collections.abc import Callable
from typing import Protocol

from ._gevent import raw_socket

#: Most heads closed each time a new connection takes the last place. More than one, so that
#: a queue of waiting connections empties in few rounds; each round costs a pass over them.
EVICTION_BATCH = 32
#: Seconds a connection that is waiting for its head keeps its place unless every other
#: waiting head is as young.
EVICTION_GRACE = 1.0


class WaitingConnection(Protocol):
    """What the registry needs from a connection handler."""

    def close_if_idle(self) -> bool:
        """Close the connection unless the client has already started sending a request.

        Return whether it was closed.
        """

    def head_progress(self, now: float) -> tuple[float, int]:
        """Seconds since the head being waited for began, and bytes of it received so far."""

    def evict(self) -> None:
        """Refuse the head being waited for (503) and close the connection."""


class Connections:
    """Registry shared by the server and its connections.

    ``draining`` turns true when the server starts stopping: from then on, every response
    carries ``Connection: close``, so each connection serves one more request at most.
    """

    def __init__(self) -> None:
        self.draining = False
        #: Keep-alive connections waiting for their next request, longest waiting first.
        self.idle: dict[WaitingConnection, None] = {}
        #: Connections waiting for (more of) a request head.
        self.heads: dict[WaitingConnection, None] = {}
        #: Heads refused by make_room() whose connection has not closed yet.
        self.evicting = 0

    def drain(self) -> None:
        """Answer one more request at most on each open connection (see the module docstring)."""
        self.draining = True

    def make_room(self) -> None:
        """Close the slowest heads, or else the longest idle connection (module docstring).

        Each connection that takes the last place calls this: while the heads refused for an
        earlier one are still closing, the places they free are enough.
        """
        if self.evicting:
            return
        heads = self.heads
        if heads:
            now = time.monotonic()
            for conn in heapq.nsmallest(EVICTION_BATCH, heads, key=_progress(now)):
                del heads[conn]
                self.evicting += 1
                conn.evict()
            return
        for conn in list(self.idle):
            if conn.close_if_idle():
                return


def _progress(now: float) -> Callable[[WaitingConnection], tuple[bool, float]]:
    # Sorts the closest to closing first: heads past the grace by their rate in bytes per
    # second, then young ones, oldest first (their rate says little yet).
    def progress(conn: WaitingConnection) -> tuple[bool, float]:
        age, received = conn.head_progress(now)
        if age < EVICTION_GRACE:
            return True, -age
        return False, received / age

    return progress


def has_pending_input(sock: socket.socket) -> bool:
    """Return whether bytes (or EOF) are waiting to be read on *sock*, without blocking."""
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True  # TLS: bytes already decrypted, waiting in OpenSSL's buffer
    try:
        raw_socket(sock).recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
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
        raw_socket(sock).shutdown(socket.SHUT_RDWR)


def wake_reader(sock: socket.socket) -> None:
    """Make a ``recv()`` blocked on *sock* return, leaving the socket able to send."""
    with contextlib.suppress(OSError):
        raw_socket(sock).shutdown(socket.SHUT_RD)
