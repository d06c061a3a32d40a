"""The database pool's figures on the metrics route, summed over ``microback serve --workers 2``:
connections in use, waits for a connection, their time, and the waits that timed out."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from pathlib import Path

from serving import StartServer, free_port, write_module

APP = """
    import os
    import threading
    import time

    from microback import App, enable_metrics
    from microback.db import Database

    app = App(secret_key="pool-metrics-test-secret-key-long-enough")
    enable_metrics(app)
    # One connection per worker: a second greenlet of the same worker waits for it.
    db = Database(app, "sqlite:///pool.db?max_connections=1&pool_timeout=0.3")


    def query_elsewhere(outcome):
        try:
            db.database.execute_sql("SELECT 1")
            outcome.append("ran")
        except Exception as exc:
            outcome.append(type(exc).__name__)
        finally:
            db.release()


    def hold_and_query_elsewhere(hold):
        db.database.execute_sql("SELECT 1")  # this request takes the worker's only connection
        outcome = []
        other = threading.Thread(target=query_elsewhere, args=(outcome,))  # a greenlet
        other.start()
        time.sleep(hold)  # gevent's: the other greenlet waits for the connection meanwhile
        db.release()
        other.join()
        return {"pid": os.getpid(), "outcome": outcome[0]}


    @app.get("/wait")
    def wait(request):
        return hold_and_query_elsewhere(0.05)


    @app.get("/timeout")
    def timeout(request):
        return hold_and_query_elsewhere(0.5)  # longer than pool_timeout


    @app.get("/hold")
    def hold(request):
        db.database.execute_sql("SELECT 1")
        deadline = time.monotonic() + 60
        while not os.path.exists("release") and time.monotonic() < deadline:
            time.sleep(0.05)  # holding the connection until the test has looked
        return {"pid": os.getpid()}
"""

CLIENTS = 6
WAITS_EACH, TIMEOUTS_EACH = 4, 2


def _get(port: int, path: str, timeout: float = 30) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in:\n{text}"
    return float(match.group(1))


def test_pool_figures_of_two_workers_add_up(start_server: StartServer, tmp_path: Path) -> None:
    write_module(tmp_path, "poolapp.py", APP)
    port = free_port()
    # One request at a time in each worker, so that each request's waits are its own.
    start_server("poolapp:app", "--workers", "2", "--max-concurrent-requests", "1", port=port)
    answers: list[dict[str, object]] = []

    def client() -> None:
        for path in ["/wait"] * WAITS_EACH + ["/timeout"] * TIMEOUTS_EACH:
            status, body = _get(port, path)  # a new connection each: both workers get some
            assert status == 200, body
            answers.append(json.loads(body))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == CLIENTS * (WAITS_EACH + TIMEOUTS_EACH)
    assert len({answer["pid"] for answer in answers}) == 2, "not both workers served"
    outcomes = sorted(str(answer["outcome"]) for answer in answers)
    timeouts = CLIENTS * TIMEOUTS_EACH
    assert outcomes == ["PoolExhausted"] * timeouts + ["ran"] * CLIENTS * WAITS_EACH

    # Held connections are counted while held, in whichever worker holds them.
    holder = threading.Thread(target=_get, args=(port, "/hold"))
    holder.start()
    deadline = time.monotonic() + 30
    while True:
        try:  # a scrape that reaches the holding worker waits for its one place: try again
            status, body = _get(port, "/metrics", timeout=1)
        except TimeoutError:
            continue
        text = body.decode()
        assert status == 200
        waits = _sample(text, "microback_db_pool_waits_total")
        in_use = _sample(text, "microback_db_pool_connections_in_use")
        done = waits == len(answers) and in_use == 1
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (tmp_path / "release").touch()
    holder.join(timeout=30)
    assert waits == len(answers)
    assert in_use == 1
    assert _sample(text, "microback_db_pool_timeouts_total") == timeouts
    # Each timed-out wait lasted the pool timeout at least.
    assert _sample(text, "microback_db_pool_wait_seconds_total") >= timeouts * 0.3
