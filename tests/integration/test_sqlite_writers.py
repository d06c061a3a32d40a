"""SQLite under ``microback serve``: waiting writers never freeze the process (issue 12).

SQLite's own busy handler sleeps inside the C call, which under gevent froze every request of
the worker, the lock holder's included. These tests run a real server on a SQLite file, with
a client that sends its body slowly, or a handler that holds a transaction while it yields,
and check what other clients notice: a reader answers at once, and every writer either
commits or gets a 503 with ``Retry-After`` within the pool timeout; with one worker and two.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import threading
import time
from pathlib import Path

import pytest
from serving import ServerProcess, StartServer, write_module

POOL_TIMEOUT = 2.0
WRITERS = 10
#: The slow client sends its body's first 16 KiB at once (the server reads that much before
#: the request takes a place in the app), then the rest in 20 pieces over about three seconds.
SLOW_BODY = b'{"text": "%s"}' % (b"s" * 17_000)
SLOW_HEAD = 16 * 1024
SLOW_PIECES, SLOW_EVERY = 20, 0.15

APP = f"""
    import sys

    import gevent

    from microback import App
    from microback.db import Database, fields

    app = App(secret_key="sqlite-writers-test-secret-0123456789")
    # atomic_requests is the default now; said here so that the test means the same on a
    # version where it was not.
    db = Database(app, "sqlite:///notes.db", pool_timeout={POOL_TIMEOUT}, atomic_requests=True)


    class Note(db.Model):
        text = fields.TextField()


    db.create_tables()


    @app.post("/notes")
    def create(request):
        return Note.create(text=request.json["text"]).to_dict(), 201


    @app.post("/hold")
    def hold(request):
        # A transaction that yields for a while: an outside call, a slow step.
        with db.atomic():
            Note.create(text="held")
            print("holding the write lock", file=sys.stderr, flush=True)
            gevent.sleep(float(request.args["seconds"]))
        return {{"held": True}}, 201


    @app.get("/count")
    def count(request):
        return {{"notes": Note.select().count()}}
"""


def _request(port: int, method: str, path: str, body: bytes | None = None) -> dict:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return {
            "status": response.status,
            "retry_after": response.getheader("Retry-After"),
            "seconds": time.monotonic() - started,
            "body": data,
        }
    finally:
        connection.close()


def _slow_writer(port: int, result: dict) -> None:
    """POST /notes, the end of its body trickling in over about three seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(
            b"POST /notes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(SLOW_BODY)
        )
        sock.sendall(SLOW_BODY[:SLOW_HEAD])
        rest = SLOW_BODY[SLOW_HEAD:]
        size = -(-len(rest) // SLOW_PIECES)
        for start in range(0, len(rest), size):
            time.sleep(SLOW_EVERY)
            sock.sendall(rest[start : start + size])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    result["status"] = int(answer.split(b" ", 2)[1])


def _writers_at_once(port: int) -> list[dict]:
    results: list[dict] = []
    barrier = threading.Barrier(WRITERS)

    def one(n: int) -> None:
        barrier.wait()
        results.append(_request(port, "POST", "/notes", json.dumps({"text": f"w{n}"}).encode()))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _reads_while(port: int, busy: threading.Event) -> list[float]:
    """Time GET /count again and again while ``busy`` is set (at least three times)."""
    seconds: list[float] = []
    while busy.is_set() or len(seconds) < 3:
        answer = _request(port, "GET", "/count")
        assert answer["status"] == 200, answer
        seconds.append(answer["seconds"])
        time.sleep(0.05)
    return seconds


def _writers_and_a_reader(port: int) -> tuple[list[dict], list[float]]:
    """Send WRITERS posts at once while timing reads; give the writers' answers and the reads."""
    busy = threading.Event()
    busy.set()
    reads: list[float] = []
    reader = threading.Thread(target=lambda: reads.extend(_reads_while(port, busy)))
    reader.start()
    writers = _writers_at_once(port)
    busy.clear()
    reader.join(timeout=60)
    return writers, reads


def _start(start_server: StartServer, tmp_path: Path, workers: int) -> ServerProcess:
    write_module(tmp_path, "notes_app.py", APP)
    # Started when it logs "listening on", which --workers logs once every worker has loaded
    # the app: a port that accepts connections is not enough, as the master listens first and
    # a worker still starting on a busy host made the first read wait 1-2 s for it.
    args = ["notes_app.py:app"]
    if workers > 1:
        args += ["--workers", str(workers)]
    return start_server(*args)


def _check_writers(writers: list[dict]) -> None:
    assert len(writers) == WRITERS
    for answer in writers:
        assert answer["status"] in (201, 503), answer
        if answer["status"] == 503:
            assert answer["retry_after"] == "1", answer
        # Committed or refused within the pool timeout (plus the time to send and answer).
        assert answer["seconds"] < POOL_TIMEOUT + 1.5, answer


@pytest.mark.parametrize("workers", [1, 2])
def test_a_slow_body_holds_no_lock_readers_and_writers_go_on(start_server, tmp_path, workers):
    port = _start(start_server, tmp_path, workers).port
    slow: dict = {}
    slow_thread = threading.Thread(target=_slow_writer, args=(port, slow))
    slow_thread.start()
    time.sleep(0.5)  # the slow request is in the app, its body arriving

    writers, reads = _writers_and_a_reader(port)
    slow_thread.join(timeout=60)

    _check_writers(writers)
    # Nothing held the lock while the slow body arrived: every writer committed.
    assert [w["status"] for w in writers] == [201] * WRITERS
    assert slow["status"] == 201
    # The bound the issue sets; under the old busy handler a read took 19.9 s. The median of
    # the reads made during the burst, so one scheduling hiccup of this shared machine does
    # not decide, and no read may take even a second.
    print(f"\nreads during the burst (ms): {[round(s * 1000, 1) for s in reads]}")
    assert statistics.median(reads) < 0.050, reads
    assert max(reads) < 1.0, reads
    assert _request(port, "GET", "/count")["body"] == b'{"notes":11}'


@pytest.mark.parametrize("workers", [1, 2])
def test_writers_behind_a_held_transaction_yield_then_get_503(start_server, tmp_path, workers):
    server = _start(start_server, tmp_path, workers)
    port = server.port
    holder: dict = {}
    hold = POOL_TIMEOUT + 2
    holding = threading.Thread(
        target=lambda: holder.update(_request(port, "POST", f"/hold?seconds={hold}", b"{}"))
    )
    holding.start()
    server.wait_for_line("holding the write lock", timeout=30)

    writers, reads = _writers_and_a_reader(port)
    holding.join(timeout=60)

    _check_writers(writers)
    # The lock was held longer than the pool timeout: every writer gave up with a 503, each
    # after waiting without blocking the others (the reader went on meanwhile).
    assert [w["status"] for w in writers] == [503] * WRITERS
    assert all(w["seconds"] >= POOL_TIMEOUT * 0.9 for w in writers), writers
    assert holder["status"] == 201
    print(f"\nreads while writers waited (ms): {[round(s * 1000, 1) for s in reads]}")
    assert statistics.median(reads) < 0.050, reads
    assert max(reads) < 1.0, reads
