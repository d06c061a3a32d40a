"""Blocked-loop warnings and request ids in the log, under a real ``microback serve``.

A handler that calls ``time.sleep(0.3)`` (the original: ``microback serve`` patches it to
yield) holds the event loop: every other request of the
process waits. The server says so in one warning line naming the route (its template), the
request id and the blocking stack, in one process and with workers. Records the app logs while
serving a request carry the request's id (text and JSON formats), and a 500 carries it too.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from pathlib import Path

import pytest
from serving import StartServer, free_port, write_module

APP = """
    from gevent.monkey import get_original

    from microback import App, enable_metrics

    # microback serve patches time.sleep into gevent.sleep, which yields; the original blocks,
    # as any call into code that does not yield does.
    blocking_sleep = get_original("time", "sleep")

    app = App(secret_key="blocked-loop-test-secret-key-long-enough")
    enable_metrics(app)


    @app.get("/sleepy/<int:n>")
    def sleepy(request, n):
        blocking_sleep(0.3)  # blocks the loop: the warning's stack shows this line
        return {"n": n}


    @app.get("/fine")
    def fine(request):
        return {"ok": True}


    @app.get("/noted")
    def noted(request):
        app.logger.warning("noting something")
        return {"ok": True}


    @app.get("/boom")
    def boom(request):
        raise RuntimeError("kaput")
"""

BLOCKED = re.compile(r"event loop blocked for (\d+) ms by GET (\S+) \(request (\S+)\)")


def _get(port: int, path: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.mark.parametrize("workers", [None, "2"])
def test_a_handler_that_sleeps_gives_exactly_one_warning_naming_its_route(
    start_server: StartServer, tmp_path: Path, workers: str | None
) -> None:
    write_module(tmp_path, "blockapp.py", APP)
    port = free_port()
    options = ["--workers", workers] if workers else []
    server = start_server("blockapp:app", *options, port=port)
    for _ in range(20):  # quick requests block nothing
        assert _get(port, "/fine").status == 200
    response = _get(port, "/sleepy/7")
    assert response.status == 200
    request_id = response.getheader("X-Request-ID")
    match = server.wait_for_line(BLOCKED, timeout=10)
    time.sleep(1.0)  # a second report of the same block would arrive within this
    for _ in range(10):
        assert _get(port, "/fine").status == 200
    time.sleep(0.3)

    # Only the handler's block counts: on a loaded host, a write to the log pipe can block too.
    warnings = [
        line for line in server.lines if "event loop blocked" in line and "/sleepy" in line
    ]
    assert len(warnings) == 1, warnings
    assert match.group(2) == "/sleepy/<int:n>"
    assert match.group(3) == request_id
    assert 250 <= int(match.group(1)) < 3000
    assert "blockapp.py:" in warnings[0] and "blocking_sleep(0.3)" in warnings[0]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.request("GET", "/metrics")
    scraped = connection.getresponse().read().decode()
    connection.close()
    assert re.search(r"^microback_event_loop_blocked_total 1\.0$", scraped, re.MULTILINE), scraped


def test_records_made_while_serving_carry_the_request_id_and_a_500_quotes_it(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "blockapp.py", APP)
    server = start_server("blockapp:app", port=free_port())
    response = _get(server.port, "/noted")
    request_id = response.getheader("X-Request-ID")
    line = server.wait_for_line(r"noting something.*")
    assert line.group(0) == f"noting something [request {request_id}]"

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    connection.request("GET", "/boom", headers={"Accept": "application/json"})
    failed = connection.getresponse()
    body = json.loads(failed.read())
    connection.close()
    assert failed.status == 500
    failed_id = failed.getheader("X-Request-ID")
    assert f"Quote request id {failed_id}" in body["detail"]
    assert "kaput" not in json.dumps(body)
    server.wait_for_line(rf"unhandled exception in GET /boom \[request {failed_id}\]")


def test_json_format_writes_request_records_as_json_with_the_id(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "blockapp.py", APP)
    server = start_server("blockapp:app", "--access-log-format", "json", port=free_port())
    response = _get(server.port, "/noted")
    request_id = response.getheader("X-Request-ID")
    line = server.wait_for_line(r'^\{.*"noting something"').string
    record = json.loads(line)
    assert record["request_id"] == request_id
    assert record["level"] == "WARNING"
    assert record["logger"] == "microback.app"
    assert record["user_id"] is None
