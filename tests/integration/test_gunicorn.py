"""An ``App`` is a plain WSGI callable: gunicorn's gevent worker runs it as it is."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import requests
from serving import REPO, gunicorn, http_request, read_response, write_module


def test_gunicorn_gevent_worker_serves_the_hello_example() -> None:
    with gunicorn("hello:app", REPO / "examples") as port:
        response = requests.get(f"http://127.0.0.1:{port}/hello/gunicorn", timeout=10)

    assert response.status_code == 200
    assert response.json() == {"message": "Hello, gunicorn!"}


def test_behind_a_proxy_on_a_unix_socket_trusted_proxies_unix_gives_the_client(
    tmp_path: Path,
) -> None:
    # gunicorn, like microback serve, gives a Unix-socket peer an empty REMOTE_ADDR.
    write_module(
        tmp_path,
        "unixproxyapp.py",
        """
        from microback import App

        app = App(secret_key="integration-test-secret-key-0123456789", trusted_proxies=["unix"])


        @app.get("/whoami")
        def whoami(request):
            return {"remote_addr": request.remote_addr}
        """,
    )
    path = tmp_path / "app.sock"
    with (
        gunicorn("unixproxyapp:app", tmp_path, "--bind", f"unix:{path}"),
        socket.socket(socket.AF_UNIX) as proxy,
    ):
        proxy.settimeout(10)
        proxy.connect(str(path))
        http_request(proxy, "/whoami", "X-Forwarded-For: 203.0.113.9\r\n")
        answer = read_response(proxy)

    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {"remote_addr": "203.0.113.9"}
