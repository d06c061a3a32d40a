"""Under ``microback serve`` PostgreSQL queries cooperate: one process runs many at once.

A real server process (gevent patched before the app is imported) gets 50 requests at once,
each running ``SELECT pg_sleep(0.2)`` on its own pooled connection. The handler records when
its query started and ended; if queries blocked the loop they would run one after another
and never overlap. The assertion is on that overlap, not on wall-clock time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests

from microback.testing import selected_backends

REPO = Path(__file__).resolve().parents[2]
REQUESTS = 50

APP = """
import time

from microback import App
from microback.db import Database

app = App(secret_key="cooperative-test-secret-key-0123456789")
db = Database(app, "sqlite:///unused.db", max_connections={requests}, pool_timeout=10)


@app.get("/sleep")
def sleep(request):
    started = time.monotonic()
    pid = db.database.execute_sql("SELECT pg_backend_pid(), pg_sleep(0.2)").fetchone()[0]
    return {{"started": started, "ended": time.monotonic(), "pid": pid}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_listening(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"microback serve exited: {process.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail("microback serve did not start listening within 20 s")


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals that were all running at the same instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_fifty_pg_sleep_requests_overlap_in_one_server_process(tmp_path, database_servers):
    if "postgresql" not in selected_backends():
        pytest.skip("PostgreSQL is not selected in MICROBACK_TEST_DATABASES")
    url = database_servers.url("postgresql")
    (tmp_path / "app.py").write_text(textwrap.dedent(APP.format(requests=REQUESTS)))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROBACK_")}
    env.update(DATABASE_URL=url, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "microback", "serve", "app.py:app", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_listening(process, port)
        results: list[dict] = []
        barrier = threading.Barrier(REQUESTS)

        def one_request() -> None:
            with requests.Session() as session:
                barrier.wait()
                response = session.get(f"http://127.0.0.1:{port}/sleep", timeout=30)
                response.raise_for_status()
                results.append(response.json())

        threads = [threading.Thread(target=one_request) for _ in range(REQUESTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()

    assert len(results) == REQUESTS
    overlap = most_at_once([(r["started"], r["ended"]) for r in results])
    print(f"\n{overlap} of {REQUESTS} pg_sleep(0.2) queries were running at the same instant")
    # Blocking queries run one at a time: 1. Half is far from that even on a loaded machine,
    # where the 50 client threads do not all get their request out within 0.2 s.
    assert overlap >= REQUESTS // 2
