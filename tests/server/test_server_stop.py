"""Stopping ``microback serve`` with SIGTERM or Ctrl-C: in-flight requests finish, then exit 0."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from serving import StartServer, http_request, read_all, read_response

STOP_SIGNALS = [
    pytest.param(signal.SIGTERM, id="SIGTERM"),
    pytest.param(signal.SIGINT, id="SIGINT"),
]


def _parse(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_request_in_flight_completes_after_stop_signal(
    start_server: StartServer, webapp: Path, signum: signal.Signals
) -> None:
    # 2 s is longer than gevent.pywsgi's own 1 s stop_timeout, which would cut it off with a 500.
    server = start_server("webapp:app")
    with server.connect() as slow:
        http_request(slow, "/slow?seconds=2")
        server.wait_for_line("slow request started")

        server.send_signal(signum)
        server.wait_for_line("stopping")
        with pytest.raises(ConnectionRefusedError):
            server.connect(timeout=2).close()
        status, headers, body = _parse(read_all(slow))

    assert status == "HTTP/1.1 200 OK"
    assert body == b"slow response complete"
    assert headers["content-length"] == str(len(body))
    assert headers["connection"] == "close"
    assert server.wait() == 0
    assert "microback.server: stopped" in server.lines[-1]


def test_idle_keep_alive_connection_delays_the_stop_no_longer_than_its_keepalive_timeout(
    start_server: StartServer, webapp: Path
) -> None:
    # Not closed at once: its client may be sending a request (tests/integration/test_drain.py).
    server = start_server("webapp:app", "--graceful-timeout", "60", "--keepalive-timeout", "2")
    with server.connect() as idle:
        http_request(idle, "/")
        assert read_response(idle).startswith(b"HTTP/1.1 200 OK")

        started = time.monotonic()
        server.send_signal(signal.SIGTERM)

        assert idle.recv(65536) == b""  # the server closed the idle connection
    assert server.wait(timeout=10) == 0
    assert time.monotonic() - started < 10  # about 2 s, nowhere near the 60 s graceful timeout


def test_graceful_timeout_bounds_the_wait_for_slow_requests(
    start_server: StartServer, webapp: Path
) -> None:
    server = start_server("webapp:app", "--graceful-timeout", "0.5")
    with server.connect() as stuck:
        http_request(stuck, "/slow?seconds=60")
        server.wait_for_line("slow request started")

        server.send_signal(signal.SIGTERM)

        assert server.wait(timeout=10) == 0
        assert not read_all(stuck).startswith(b"HTTP/1.1 200")  # cut off, not answered
    assert any("still busy after 0.5s" in line for line in server.lines)


def test_second_signal_stops_without_waiting(start_server: StartServer, webapp: Path) -> None:
    server = start_server("webapp:app", "--graceful-timeout", "60")
    with server.connect() as stuck:
        http_request(stuck, "/slow?seconds=60")
        server.wait_for_line("slow request started")

        server.send_signal(signal.SIGINT)
        server.wait_for_line("stopping")
        server.send_signal(signal.SIGINT)

        assert server.wait(timeout=10) == 0
    assert any("received SIGINT again" in line for line in server.lines)


def test_connections_limit_queues_further_clients(start_server: StartServer, webapp: Path) -> None:
    server = start_server("webapp:app", "--connections", "1")
    with server.connect() as first, server.connect() as second:
        http_request(first, "/slow?seconds=0.5")
        server.wait_for_line("slow request started")

        # The kernel accepts the second connection, but the server leaves it queued while the
        # only slot is taken.
        http_request(second, "/", headers="Connection: close\r\n")
        second.settimeout(0.2)
        with pytest.raises(TimeoutError):
            second.recv(1)
        first.close()  # the slot frees once the slow request ends and the connection closes
        second.settimeout(10)

        assert read_all(second).startswith(b"HTTP/1.1 200 OK")


def test_a_full_server_closes_its_longest_idle_connection_for_a_new_client(
    start_server: StartServer, webapp: Path
) -> None:
    # Without this, a new client would wait in the accept queue until an idle client's
    # keep-alive timeout (60 s here) freed a place.
    server = start_server("webapp:app", "--connections", "2", "--keepalive-timeout", "60")
    with server.connect() as first:
        http_request(first, "/")
        assert read_response(first).startswith(b"HTTP/1.1 200 OK")
        second = server.connect()
        # The second connection takes the last place; the first, idle, is closed for it.
        http_request(second, "/")
        assert read_response(second).startswith(b"HTTP/1.1 200 OK")
        first.settimeout(5)
        assert first.recv(1) == b""
        with server.connect(timeout=5) as third:
            http_request(third, "/", headers="Connection: close\r\n")
            assert read_all(third).startswith(b"HTTP/1.1 200 OK")
        second.close()
