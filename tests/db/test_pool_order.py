"""Requests waiting for a pooled connection get one in the order they asked for it.

A pool of one connection, held; five requests (threads here, greenlets under ``microback
serve``: the pool's wait is the same ``threading.Event``) ask for a connection one after
another, each queued before the next asks. The holder gives the connection back and at once
asks again: it is a newcomer now, and must not take the connection ahead of the five who
waited. Each request records when its turn came by appending its name once it holds the
connection, runs a query on it, and gives it back. The assertion is on that order, not on
time.
"""

from __future__ import annotations

import threading
import time

import pytest

from microback.db import Database

WAITERS = 5


def _until(condition, what: str) -> None:
    """Poll *condition* (another thread must make it true) for up to 10 s."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never {what}")
        time.sleep(0.005)


def test_waiters_are_served_in_arrival_order_and_a_newcomer_goes_last(make_db) -> None:
    db: Database = make_db(max_connections=1, pool_timeout=30)
    pool = db.database
    served: list[str] = []
    errors: list[BaseException] = []

    def take_turn(name: str) -> None:
        try:
            pool.connect()
            try:
                served.append(name)
                pool.execute_sql("SELECT 1").fetchone()
            finally:
                pool.close()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    pool.connect()  # the holder: the only connection
    threads = []
    for number in range(WAITERS):
        thread = threading.Thread(target=take_turn, args=(f"waiter {number}",))
        thread.start()
        threads.append(thread)
        _until(lambda n=number: pool.waiting == n + 1, f"queued waiter {number}")

    pool.close()  # the connection goes back: the oldest waiter's turn...
    take_turn("holder, asking again")  # ...not this newcomer's, though it asks at once
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert served == [*(f"waiter {n}" for n in range(WAITERS)), "holder, asking again"]
    assert pool.pool_stats.waits == WAITERS + 1
