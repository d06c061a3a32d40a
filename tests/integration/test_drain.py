"""A draining worker fails no request on its open keep-alive connections (SIGHUP and SIGTERM).

When a worker stops (a reload retires it, or the server stops), a client on one of its
keep-alive connections may be sending its next request at that very moment. Closing the
connection then loses the request for a client that does not retry (``http.client`` does
not). So a draining worker answers the next request on each open connection, with
``Connection: close``, and closes a connection only once it has served that request or stayed
idle for the keep-alive timeout.
"""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from serving import (
    Load,
    StartServer,
    free_port,
    http_request,
    read_all,
    read_response,
    write_module,
)

#: A raw WSGI app, quick to import (each reload imports it again).
APP = """
    import json
    import os


    def app(environ, start_response):
        body = json.dumps({"pid": os.getpid()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
"""

RELOADS = 5


def test_repeated_reloads_fail_no_request_of_a_client_that_does_not_retry(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "drainapp.py", APP)
    server = start_server(
        "drainapp:app", "--workers", "2", "--log-level", "warning", port=free_port()
    )
    load = Load(server.port, threads=6, keep_alive=True, retry=False)
    pids = set()
    try:
        for _ in range(RELOADS):
            time.sleep(0.3)
            before = len(load.answers)
            old = set(server.children())
            server.send_signal(signal.SIGHUP)
            _wait(lambda old=old: not old & set(server.children()), "the old workers to exit")
            assert len(load.answers) > before, "no request answered during the reload"
            pids.update(answer["pid"] for _, answer in list(load.answers))
        time.sleep(0.3)
    finally:
        load.stop()

    assert load.failures == []
    assert len(load.answers) > 100
    assert len(pids) > RELOADS  # every generation answered: the reloads really happened


def test_a_stopping_server_answers_the_next_request_on_an_idle_connection(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "drainapp.py", APP)
    server = start_server("drainapp:app", "--keepalive-timeout", "30", "--graceful-timeout", "60")
    with server.connect() as idle, server.connect() as silent:
        http_request(idle, "/")
        assert b"Connection: close" not in read_response(idle)
        http_request(silent, "/")
        read_response(silent)

        server.send_signal(signal.SIGTERM)
        server.wait_for_line("stopping")
        time.sleep(0.2)  # the stop is under way: the old code closed idle connections here
        http_request(idle, "/")  # the client had no way to know, and sends its next request
        answer = read_all(idle)

        assert answer.startswith(b"HTTP/1.1 200 OK"), answer
        assert re.search(rb"\r\nConnection: close\r\n", answer)
        # The other connection stays open, idle, until its keep-alive timeout, which is the
        # only bound on a request the client may be sending; its closing ends the stop.
        silent.settimeout(0.5)
        assert _still_open(silent)
    assert server.wait(timeout=10) == 0


def _still_open(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) != b""
    except TimeoutError:
        return True


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)
