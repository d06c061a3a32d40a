"""Readiness under a real ``microback serve --workers 2``: 503 before the workers stop accepting.

A load balancer polls readiness and stops sending to a process that answers 503; if the
process stopped accepting first, the connections sent meanwhile would be refused. With
``--drain-delay`` the workers answer 503 from the moment SIGTERM arrives, and go on accepting
for that long. The app's start-up and shutdown hooks run once in each worker.
"""

from __future__ import annotations

import http.client
import signal
import time
from pathlib import Path

from serving import StartServer, free_port, write_module

APP = """
    import os

    from microback import App, enable_health

    app = App(secret_key="readiness-test-secret-key-long-enough")
    enable_health(app)


    @app.on_startup
    def opened():
        with open("hooks.log", "a") as log:
            log.write(f"start {os.getpid()}\\n")


    @app.on_shutdown
    def closed():
        with open("hooks.log", "a") as log:
            log.write(f"stop {os.getpid()}\\n")
"""


def _probe(port: int) -> str:
    """GET /readyz on a new connection: its status, or "refused" once nobody accepts.

    A connection still in the accept queue when the last worker closes the socket is reset:
    that too means the socket is closed.
    """
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/readyz")
        status = connection.getresponse().status
        connection.close()
        return str(status)
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        return "refused"


def test_readiness_turns_503_before_the_workers_stop_accepting(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "readyapp.py", APP)
    port = free_port()
    server = start_server(
        "readyapp:app", "--workers", "2", "--drain-delay", "1.5",
        port=port,
    )  # fmt: skip
    server.wait_for_line(r"2 worker\(s\) serving", timeout=15)
    hooks_log = tmp_path / "hooks.log"
    assert _probe(port) == "200"

    server.send_signal(signal.SIGTERM)
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen.append(_probe(port))
        if seen[-1] == "refused":
            break
        time.sleep(0.02)
    assert server.wait(timeout=30) == 0

    assert seen[-1] == "refused", seen
    first_not_ready = next(i for i, answer in enumerate(seen) if answer != "200")
    assert seen[first_not_ready] == "503", seen
    # For the drain delay (1.5 s), every worker answered 503 and accepted: many probes.
    assert seen.count("503") >= 10, seen
    assert "200" not in seen[seen.index("503") + 5 :], seen

    hooks = hooks_log.read_text().split("\n")
    starts = {line.split()[1] for line in hooks if line.startswith("start")}
    stops = {line.split()[1] for line in hooks if line.startswith("stop")}
    assert len(starts) == 2
    # Each worker ran its shutdown hook after its graceful stop.
    assert stops == starts, server.log
