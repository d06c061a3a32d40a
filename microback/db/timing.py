"""Where a request's database time goes, and the pool's figures: cheap sums, read by others.

Per request: seconds in the database (queries, commits, opening connections) and seconds
waiting for a pooled connection, summed in a ``threading.local`` (one per greenlet under
``microback serve``, which patches before the database layer is imported). ``Database``
hands the two sums to the server at the end of each request through the environ
(``microback.db_seconds``, ``microback.pool_wait_seconds``), for the slow-request line.
A query costs two clock reads and an addition here; a call inside another (the lazy connect
of a query) is counted once, by the outer call.

Per pool (per process): how many requests had to wait for a connection, their waits' total,
how many gave up (timed out), as plain counters on the pool that :mod:`microback.metrics`
reads when it flushes; connections in use are the pool's own count.
"""

from __future__ import annotations

import threading

__all__ = ["PoolStats", "RequestTimes", "request_times"]


class RequestTimes(threading.local):
    """The current greenlet's sums since :meth:`take` last ran (class defaults: 0)."""

    database = 0.0
    pool_wait = 0.0
    timing = False  # a database call of this greenlet is being timed (calls nest)

    def take(self) -> tuple[float, float]:
        """Give ``(database, pool_wait)`` seconds and start again from zero."""
        taken = (self.database, self.pool_wait)
        if taken != (0.0, 0.0):
            self.database = self.pool_wait = 0.0
        return taken


#: The one instance every database adds to.
request_times = RequestTimes()


class PoolStats:
    """A pool's counters since the process started; only ever added to."""

    __slots__ = ("timeouts", "wait_seconds", "waits")

    def __init__(self) -> None:
        self.waits = 0
        self.wait_seconds = 0.0
        self.timeouts = 0

    def waited(self, seconds: float, timed_out: bool) -> None:
        """Count one wait for a connection that took *seconds* (and gave up, if *timed_out*)."""
        self.waits += 1
        self.wait_seconds += seconds
        request_times.pool_wait += seconds
        if timed_out:
            self.timeouts += 1
