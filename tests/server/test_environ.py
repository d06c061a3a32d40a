"""The Host check of microback/hosts.py through a real ``microback serve``, with raw bytes.

webtest hands the app a Python string; here the Host goes over a socket as a client (or an
attacker) writes it, through the server's parser, so what the app sees is what it gets live.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import ServerProcess, read_response, write_module

APP = """
    from microback import App

    app = App(secret_key="integration-test-secret-key-0123456789",
              allowed_hosts=["localhost", ".example.com", "127.0.0.1", "[::1]"])


    @app.get("/reset")
    def reset(request):
        return {"link": request.host_url + "reset?token=t"}
"""


def _ask(port: int, host: bytes) -> tuple[int, dict[str, object]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET /reset HTTP/1.1\r\nHost: " + host + b"\r\nAccept: application/json\r\n\r\n"
        )
        response = read_response(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    # One server for every case: they differ only in the bytes sent.
    directory: Path = tmp_path_factory.mktemp("hosts")
    write_module(directory, "hostapp.py", APP)
    server = ServerProcess(["--port", "0", "hostapp:app"], directory)
    yield server.port
    server.close()


@pytest.mark.parametrize(
    ("host", "link"),
    [
        (b"localhost", "http://localhost/reset?token=t"),
        (b"localhost:8000", "http://localhost:8000/reset?token=t"),
        (b"api.example.com", "http://api.example.com/reset?token=t"),
        (b"[::1]:8000", "http://[::1]:8000/reset?token=t"),
        (b"127.0.0.1:1", "http://127.0.0.1:1/reset?token=t"),
    ],
)
def test_valid_hosts_are_served(port: int, host: bytes, link: str) -> None:
    assert _ask(port, host) == (200, {"link": link})


@pytest.mark.parametrize(
    "host",
    [
        b"localhost:80@evil.example",
        b"evil.com/.example.com",
        b"evil.com\\.example.com",
        b"local host",
        "b\u00fccher.example.com".encode(),
        b"localhost:",
        b"localhost:65536",
        b"::1",
        b"[::1]:",
        b"[::1]@evil.example",
        b"[fe80::1%eth0]",
    ],
)
def test_malformed_hosts_are_refused(port: int, host: bytes) -> None:
    status, body = _ask(port, host)
    assert status == 400, body
    assert body["status"] == 400
    assert re.match(r"the Host header .* is not a valid name\[:port\]: ", str(body["detail"]))
