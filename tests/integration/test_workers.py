"""``microback serve --workers 2``: a master and its workers, as a real process tree.

One server is shared by the tests of this module, in order; the last one stops it. Its app
answers with the pid of the worker that served, and with a version read from ``version.txt``
when the module is imported, so a test can tell which worker and which code answered.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from serving import Load, ServerProcess, http_request, read_all, write_module

WORKER_APP = """
    import os
    import sys
    from pathlib import Path

    import gevent
    from itsdangerous import URLSafeSerializer

    from microback import App

    VERSION = Path(__file__).with_name("version.txt").read_text().strip()

    app = App()  # no secret key: the master makes one for all workers


    KEY = app.secret_key_for("test tokens")


    def signer():
        return URLSafeSerializer(KEY, salt="session")


    @app.get("/")
    def index(request):
        return {"pid": os.getpid(), "version": VERSION}


    @app.get("/sign")
    def sign(request):
        return {"pid": os.getpid(), "token": signer().dumps({"user": 7})}


    @app.get("/verify")
    def verify(request):
        return {"pid": os.getpid(), "data": signer().loads(request.args["token"])}


    @app.get("/slow")
    def slow(request):
        print("slow request started", file=sys.stderr, flush=True)
        gevent.sleep(float(request.args["seconds"]))
        return {"pid": os.getpid()}


    @app.get("/block")
    def block(request):
        print(f"worker {os.getpid()} blocks its loop", file=sys.stderr, flush=True)
        while True:  # a CPU loop: the event loop never runs again
            pass
"""


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("workers")
    write_module(directory, "workerapp.py", WORKER_APP)
    (directory / "version.txt").write_text("1\n")
    return directory


@pytest.fixture(scope="module")
def server(app_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        ["--port", "0", "workerapp:app", "--workers", "2", "--timeout", "2"], app_dir
    )
    yield server
    server.close()


def _get(server: ServerProcess, path: str) -> dict[str, Any]:
    response = requests.get(server.url + path, timeout=10)  # a new connection each time
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _other_worker(server: ServerProcess, path: str, not_pid: int) -> dict[str, Any]:
    for _ in range(200):
        answer = _get(server, path)
        if answer["pid"] != not_pid:
            return answer
    raise AssertionError(f"worker {not_pid} answered 200 requests in a row")


def _workers(server: ServerProcess) -> set[int]:
    return set(server.children())


def test_workers_share_the_generated_secret_key(server: ServerProcess) -> None:
    signed = _get(server, "/sign")

    verified = _other_worker(server, "/verify?token=" + signed["token"], signed["pid"])

    assert verified["data"] == {"user": 7}
    assert len(_workers(server)) == 2
    warnings = [line for line in server.lines if "No secret key set" in line]
    assert len(warnings) == 1, server.log  # said once, by the master
    assert (
        "test tokens are signed with a random key the master made for all workers" in (warnings[0])
    )


def test_both_workers_serve_some_of_50_connections_opened_at_once(
    server: ServerProcess,
) -> None:
    # A burst, as a load generator opens it: 50 connections started without waiting for
    # any, then one request on each. A worker that took a whole burst left the other idle.
    sockets = [socket.socket() for _ in range(50)]
    try:
        for sock in sockets:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", server.port))
        for sock in sockets:
            select.select([], [sock], [], 10)
            sock.settimeout(10)
            http_request(sock, "/", headers="Connection: close\r\n")
        answers = [read_all(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()

    pids = [json.loads(answer.partition(b"\r\n\r\n")[2])["pid"] for answer in answers]
    served = {pid: pids.count(pid) for pid in set(pids)}
    assert set(served) == _workers(server), served


def test_reload_with_broken_code_keeps_the_old_workers(
    server: ServerProcess, app_dir: Path
) -> None:
    module = app_dir / "workerapp.py"
    good = module.read_text()
    before = _workers(server)
    module.write_text(good + "\ndef broken(:\n")
    try:
        server.send_signal(signal.SIGHUP)
        line = server.wait_for_line("reload failed").string
    finally:
        module.write_text(good)

    assert "reload failed, the old workers keep serving: importing 'workerapp' failed: " in line
    assert "SyntaxError" in line and "workerapp.py:" in line
    assert sum("reload failed" in line for line in server.lines) == 1
    assert "Traceback" not in server.log
    assert _get(server, "/")["version"] == "1"
    _wait_until(lambda: _workers(server) == before, "the new workers to exit")


def test_reload_under_load_fails_no_request(server: ServerProcess, app_dir: Path) -> None:
    old = _workers(server)
    (app_dir / "version.txt").write_text("2\n")
    fresh = Load(server.port, threads=2)
    reused = Load(server.port, threads=2, keep_alive=True)
    try:
        time.sleep(0.3)
        server.send_signal(signal.SIGHUP)
        server.wait_for_line("reload done")
        done = time.monotonic()
        _wait_until(lambda: not old & _workers(server), "the old workers to exit")
        time.sleep(0.3)
    finally:
        fresh.stop()
        reused.stop()

    assert fresh.failures == [] and reused.failures == []
    assert len(fresh.answers) > 20 and len(reused.answers) > 20
    versions = [a["version"] for a in fresh.answers_since(done) + reused.answers_since(done)]
    assert versions[-10:] == ["2"] * 10
    assert {a["version"] for a in fresh.answers_since(0)} == {"1", "2"}
    assert _get(server, "/")["version"] == "2"


def test_killed_worker_is_replaced_under_load(server: ServerProcess) -> None:
    victim, survivor = sorted(_workers(server))
    load = Load(server.port, threads=4)
    try:
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        server.wait_for_line(rf"worker {victim} was killed by SIGKILL; starting a new one")
        _wait_until(lambda: len(_workers(server) - {survivor}) == 1, "a new worker")
        (replacement,) = _workers(server) - {survivor}
        _wait_until(
            lambda: any(a["pid"] == replacement for a in load.answers_since(killed)),
            "the new worker to answer",
        )
        replaced_in = time.monotonic() - killed
        time.sleep(0.2)
    finally:
        load.stop()

    assert replaced_in < 3, replaced_in  # about a second; slack for a loaded CI host
    assert len(load.failures) <= 4, load.failures  # at most one request in flight per thread
    assert {a["pid"] for a in load.answers_since(killed)} >= {survivor, replacement}


def test_blocked_worker_is_killed_after_the_timeout(server: ServerProcess) -> None:
    before = _workers(server)
    blocked_answer: list[bytes] = []

    def call_block() -> None:
        with server.connect(timeout=15) as sock:
            http_request(sock, "/block")
            blocked_answer.append(read_all(sock))

    caller = threading.Thread(target=call_block, daemon=True)
    caller.start()
    blocked = int(server.wait_for_line(r"worker (\d+) blocks its loop").group(1))
    started = time.monotonic()
    answers = [_get(server, "/")["pid"] for _ in range(5)]  # the other worker serves on

    server.wait_for_line(rf"worker {blocked}: its event loop has not run for \d+s \(timeout 2s\)")
    server.wait_for_line(rf"worker {blocked} was killed by SIGKILL; starting a new one")
    caller.join(timeout=10)
    _wait_until(lambda: len(_workers(server)) == 2 and blocked not in _workers(server), "new")

    assert blocked not in answers
    assert 2 <= time.monotonic() - started < 6
    assert blocked_answer == [b""]  # the request on the blocked worker is lost, nothing else
    assert re.search(r'File ".*workerapp\.py", line \d+ in block', server.log)  # its stack
    assert len(_workers(server) - before) == 1
    assert _get(server, "/")["version"] == "2"


def test_sigterm_lets_50_requests_in_flight_finish(server: ServerProcess) -> None:
    workers = _workers(server)
    sockets = [server.connect(timeout=15) for _ in range(50)]
    try:
        for sock in sockets:
            http_request(sock, "/slow?seconds=1.5")
        _wait_until(lambda: server.log.count("slow request started") >= 50, "50 requests")

        server.send_signal(signal.SIGTERM)
        server.wait_for_line(r"received SIGTERM: stopping 2 worker\(s\)")
        answers = [read_all(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()

    assert server.wait(timeout=15) == 0
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200 OK"), answer
        assert b"\r\nConnection: close\r\n" in answer
    assert server.lines[-1].endswith("microback.server: stopped")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def _wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)
