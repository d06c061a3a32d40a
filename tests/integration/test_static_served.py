"""``Static`` under ``microback serve``: the files over real HTTP, and no path outside them."""

from __future__ import annotations

import gzip
import http.client
from pathlib import Path

import pytest
import requests

from .conftest import StartServer, write_module

SECRET = "static-test-secret-0123456789abcdef01234"
CSS = b"body { color: #333; }\n" * 40


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_bytes(CSS)
    (static / "css" / "site.css.gz").write_bytes(gzip.compress(CSS))
    (tmp_path / "secret.txt").write_text("not for the public\n")
    return static


@pytest.mark.parametrize("autorefresh", [False, True])
def test_no_path_reaches_outside_the_folder(
    start_server: StartServer, tmp_path: Path, folder: Path, autorefresh: bool
) -> None:
    write_module(
        tmp_path,
        "staticapp.py",
        f"""
        from microback import App, Static

        app = App(secret_key={SECRET!r})
        Static(app, {str(folder)!r}, autorefresh={autorefresh})
        """,
    )
    server = start_server("staticapp:app", cwd=tmp_path)
    served = requests.get(server.url + "/static/css/site.css", timeout=10)
    assert served.content == CSS  # requests asks for gzip and decodes it
    assert served.headers["Content-Encoding"] == "gzip"
    etag = served.headers["ETag"]
    again = requests.get(
        server.url + "/static/css/site.css", headers={"If-None-Match": etag}, timeout=10
    )
    assert again.status_code == 304

    for raw in (
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/css/../../secret.txt",
        "/static/css/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static//" + str(tmp_path / "secret.txt").lstrip("/"),
        "/static/css/site.css%00.txt",
    ):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", raw)
        answer = connection.getresponse()
        body = answer.read()
        connection.close()
        assert b"not for the public" not in body, raw
        # 308: werkzeug merges the repeated slash, to a path still under /static/.
        assert answer.status in (308, 400, 404), (raw, answer.status)
        if answer.status == 308:
            assert answer.getheader("Location", "").startswith(server.url + "/static/"), raw
