"""What the server's own refusals look like: a short reason of ours, the app's security headers.

A request refused before any application sees it (a malformed or oversized head, an unsupported
method or version, a head too slow to arrive) is answered by the server itself, over a raw
socket here. The answer must protect a browser as the app's own error pages do, and must
never repeat the parser's internal wording.
"""

from __future__ import annotations

import http.client
import io
from pathlib import Path

import pytest
from serving import RAW_APP, ServerProcess, StartServer, exchange, write_module

from microback import App
from microback.testing import TestClient

SECURITY_HEADERS = (
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Content-Security-Policy",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
)

# (id, status, raw request) for the shared server's limits (tests/serving.py).
REFUSALS = [
    ("no-host", 400, b"GET /refused HTTP/1.1\r\n\r\n"),
    (
        "bad-content-length",
        400,
        b"POST /refused HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\n",
    ),
    ("target-too-long", 414, b"GET /" + b"x" * 2000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("headers-too-large", 431, b"GET / HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 5000 + b"\r\n\r\n"),
    ("body-too-large", 413, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 20000\r\n\r\n"),
    ("coding", 501, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n"),
    ("method", 501, b"FOO / HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("version", 505, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"),
    ("head-timeout", 408, b"GET / HTTP/1.1\r\nHost: t\r\n"),
]


def _app_error_headers() -> dict[str, str]:
    """The security headers a microback App with default settings puts on its own errors."""
    response = TestClient(App(secret_key="x" * 32)).get("/nowhere", status=404)
    return {name: response.headers[name] for name in SECURITY_HEADERS}


def _parse(answer: bytes) -> http.client.HTTPResponse:
    class Socket:
        def makefile(self, *args: object, **kwargs: object) -> io.BytesIO:
            return io.BytesIO(answer)

    response = http.client.HTTPResponse(Socket())  # type: ignore[arg-type]
    response.begin()
    return response


@pytest.mark.parametrize(
    ("status", "raw"), [pytest.param(status, raw, id=name) for name, status, raw in REFUSALS]
)
def test_refusals_carry_the_security_headers_of_the_apps_errors(
    http_server: ServerProcess, status: int, raw: bytes
) -> None:
    expected = _app_error_headers()

    response = _parse(exchange(http_server, raw))

    assert response.status == status
    assert {name: response.headers[name] for name in SECURITY_HEADERS} == expected
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


# (raw request, status, llhttp's wording for it)
PARSER_ERRORS = [
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "Pause on PRI/Upgrade"),
    (b"FOO / HTTP/1.1\r\nHost: t\r\n\r\n", 501, "Invalid method encountered"),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n", 400, "Invalid header value char"),
    (
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1_0\r\n\r\n",
        400,
        "Invalid character in Content-Length",
    ),
    (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
        400,
        "Expected LF after chunk data",
    ),
]


def test_parser_wording_goes_to_the_debug_log_never_to_the_client(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "rawapp.py", RAW_APP)
    server = start_server("rawapp:app", "--log-level", "debug")

    for raw, status, wording in PARSER_ERRORS:
        answer = exchange(server, raw)
        response = _parse(answer)
        body = response.read().decode()

        assert response.status == status, answer
        assert wording.lower() not in answer.decode("latin-1").lower()
        assert body.startswith(f"{status} ") and len(body.splitlines()) == 1
        server.wait_for_line(rf"DEBUG microback\.server: request \S+: the parser said: {wording}")
