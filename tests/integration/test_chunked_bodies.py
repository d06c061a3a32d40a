"""Chunked request bodies against an app's ``max_content_length``, through real servers.

A chunked body has no length up front, so the limit is checked while it is read: any size up
to the limit reaches the handler whole, one byte more is a 413. The same app runs under
``microback serve`` and gunicorn's gevent worker (both say ``wsgi.input_terminated``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import StartServer, gunicorn, write_module

LIMIT = 4096

APP = f"""
    import hashlib

    from microback import App

    app = App(secret_key="integration-test-secret-key-0123456789", max_content_length={LIMIT})


    @app.post("/echo")
    def echo(request):
        data = request.get_data()
        return {{"received": len(data), "sha256": hashlib.sha256(data).hexdigest()}}, 201
"""


@pytest.fixture(params=["microback", "gunicorn"])
def port(
    request: pytest.FixtureRequest, tmp_path: Path, start_server: StartServer
) -> Iterator[int]:
    write_module(tmp_path, "chunkapp.py", APP)
    if request.param == "microback":
        yield start_server("chunkapp:app").port
    else:
        with gunicorn("chunkapp:app", tmp_path) as gunicorn_port:
            yield gunicorn_port


def _post_chunked(port: int, body: bytes) -> tuple[int, dict[str, object]]:
    # Pieces of at most 1000 bytes, each sent as its own chunk.
    pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    with contextlib.closing(connection):
        connection.request(
            "POST",
            "/echo",
            body=iter(pieces),
            headers={"Content-Type": "application/octet-stream"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())


@pytest.mark.parametrize("size", [0, 1, 1000, LIMIT - 1, LIMIT])
def test_chunked_body_up_to_the_limit_is_read_whole(port: int, size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    status, answer = _post_chunked(port, body)

    assert (status, answer) == (
        201,
        {"received": size, "sha256": hashlib.sha256(body).hexdigest()},
    )


def test_chunked_body_over_the_limit_is_413(port: int) -> None:
    status, answer = _post_chunked(port, b"x" * (LIMIT + 1))

    assert status == 413
    answer.pop("request_id", None)  # given by microback's server, not by gunicorn
    assert answer == {
        "type": "about:blank",
        "title": "Request Entity Too Large",
        "status": 413,
        "detail": "the request body (sent without Content-Length) is larger than the "
        "limit of 4 KiB (setting max_content_length)",
    }
