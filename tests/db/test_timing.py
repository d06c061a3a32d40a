"""The per-request database time (microback/db/timing.py) that the slow-request line shows."""

from __future__ import annotations

import time

from microback.db import Database
from microback.db.timing import request_times


def test_a_query_that_opens_its_connection_is_counted_once(db: Database) -> None:
    db.close_all()  # the query below opens a connection inside its own call
    request_times.take()
    started = time.perf_counter()
    db.database.execute_sql("SELECT 1")
    elapsed = time.perf_counter() - started
    database, waited = request_times.take()
    db.release()
    # Counted inside the measured interval, once: the connect within the query is not added
    # a second time (it was, and a request's database time came out longer than its app time).
    assert 0 < database <= elapsed
    assert waited == 0
    assert request_times.take() == (0.0, 0.0)  # taking starts again from zero
