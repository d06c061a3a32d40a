"""``Server`` and ``Limits`` used from Python (microback/server/server.py, limits.py).

The in-process tests run the server in this (unpatched) process and talk to it through
gevent's own sockets, so both sides cooperate on one event loop.
"""

from __future__ import annotations

import socket

import gevent
import gevent.socket
import pytest

from microback.server import Limits, Server


def _hello(environ: dict[str, object], start_response: object) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])  # type: ignore[operator]
    return [b"hi"]


def test_server_serves_on_a_socket_bound_elsewhere_and_stops_on_request() -> None:
    # A master process binds once and hands the socket to each worker: Server(listener=...).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = Server(_hello, listener=listener, graceful_timeout=5)
    server.start()
    try:
        client = gevent.socket.create_connection(server.address, timeout=5)
        client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = client.recv(4096)

        assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\nhi")
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

        stopping = gevent.spawn(server.stop)
        gevent.sleep(0.1)
        # The idle keep-alive connection still answers one request, and closes after it.
        client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = client.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200 OK") and b"\r\nConnection: close\r\n" in answer
        assert client.recv(1) == b""
        stopping.join(timeout=5)
        assert stopping.successful()
        client.close()
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_request_line": 0}, "max_request_line must be a whole number of at least 1, not 0"),
        ({"max_header_count": 1.5}, "max_header_count must be a whole number of at least 1"),
        ({"max_body_size": -1}, "max_body_size must be a whole number of at least 0, not -1"),
        ({"header_timeout": 0}, "header_timeout must be a number of seconds above 0, not 0"),
        ({"keepalive_timeout": float("inf")}, "keepalive_timeout must be a number of seconds"),
        ({"min_body_rate": -1}, "min_body_rate must be a whole number of at least 0, not -1"),
        ({"body_rate_grace": 0}, "body_rate_grace must be a number of seconds above 0, not 0"),
    ],
)
def test_limits_refuse_bad_values_by_name(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Limits(**arguments)  # type: ignore[arg-type]
