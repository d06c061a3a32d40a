"""A first-come, first-served wait for a pooled connection.

peewee's pool makes a request that finds no free connection wait on a condition for up to a
second at a time, and a returned connection wakes one waiter; but a request that arrives
meanwhile can take the connection first, and the woken waiter goes back to waiting. Under a
burst (a hundred log-ins at once, each taking a connection before its password check and
again after it) the requests that came first could wait out the whole pool timeout while
newcomers went by, and got a 503. Here waiters queue: while anyone waits, a newcomer queues
behind, and a returned connection wakes the oldest waiter, so a wait is bounded by the
queue ahead of it.

Each wait is counted (:class:`~.timing.PoolStats`, for metrics) and added to the waiting
request's pool-wait time (for the slow-request line); a connection found free costs nothing.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from typing import Any

import peewee
from playhouse.pool import MaxConnectionsExceeded

from ._peewee import ReleaseHook, pool_in_use, pool_wait_timeout
from .timing import PoolStats

__all__ = ["FairPool"]


class FairPool(ReleaseHook):
    """Mixed in before a ``playhouse.pool`` class: connections go to waiters in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue: collections.deque[threading.Event] = collections.deque()
        self.pool_stats = PoolStats()

    @property
    def connections_in_use(self) -> int:
        """Connections of this pool checked out now (by any greenlet of this process)."""
        return pool_in_use(self)

    @property
    def waiting(self) -> int:
        """Requests of this process queued for a connection now, oldest served first."""
        return len(self._queue)

    def connect(self, reuse_if_open: bool = False) -> bool:
        # peewee.Database.connect, not the pool's: it raises MaxConnectionsExceeded at once
        # when every connection is in use, instead of waiting unfairly.
        take: Any = peewee.Database.connect
        if not self._queue:
            try:
                return bool(take(self, reuse_if_open))
            except MaxConnectionsExceeded:
                pass
        turn = threading.Event()  # gevent's once microback serve patched threading
        self._queue.append(turn)
        started = time.monotonic()
        deadline = started + pool_wait_timeout(self)
        timed_out = False
        try:
            while True:
                if self._queue[0] is turn:
                    try:
                        return bool(take(self, reuse_if_open))
                    except MaxConnectionsExceeded:
                        pass
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    raise MaxConnectionsExceeded(
                        "Max connections exceeded, timed out attempting to connect."
                    )
                turn.wait(remaining)
                turn.clear()
        finally:
            self.pool_stats.waited(time.monotonic() - started, timed_out)
            self._queue.remove(turn)
            self._wake_first()  # there may be more than one connection free

    def released(self) -> None:
        self._wake_first()

    def _wake_first(self) -> None:
        with contextlib.suppress(IndexError):  # nobody waits
            self._queue[0].set()
