"""``Static``: files served through whitenoise as a route of the app, in tests and in serve."""

from __future__ import annotations

import gzip
import http.client
import re
from pathlib import Path

import pytest
import requests
from serving import StartServer, write_module
from werkzeug.test import Client

from microback import App, Static
from microback.testing import TestClient

SECRET = "static-test-secret-0123456789abcdef01234"
CSS = b"body { color: #333; }\n" * 40


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_bytes(CSS)
    (static / "css" / "site.css.gz").write_bytes(gzip.compress(CSS))
    (static / "app.3f2a9c1e77.js").write_bytes(b"console.log(1)\n")
    (tmp_path / "secret.txt").write_text("not for the public\n")
    return static


@pytest.fixture
def app(folder: Path) -> App:
    app = App(secret_key=SECRET)
    Static(app, folder, max_age=120)
    return app


def test_a_file_is_served_with_its_type_length_and_caching_headers(client: TestClient) -> None:
    answer = client.get("/static/css/site.css")

    assert answer.body == CSS
    assert answer.content_type == "text/css"
    assert answer.headers["Content-Length"] == str(len(CSS))
    assert answer.headers["Cache-Control"] == "max-age=120, public"
    assert answer.headers["ETag"]
    assert answer.headers["Last-Modified"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"  # the app's headers apply


def test_a_known_etag_is_answered_304_without_a_body(client: TestClient) -> None:
    etag = client.get("/static/css/site.css").headers["ETag"]

    answer = client.get("/static/css/site.css", headers={"If-None-Match": etag}, status=304)

    assert answer.body == b""


def test_the_compressed_variant_goes_to_clients_that_accept_it(app: App) -> None:
    # werkzeug's client, not webtest's: webtest decodes gzip bodies before the test sees them.
    client = Client(app)
    zipped = client.get(
        "/static/css/site.css", headers={"Accept-Encoding": "gzip, br"}, buffered=True
    )
    plain = client.get(
        "/static/css/site.css", headers={"Accept-Encoding": "identity"}, buffered=True
    )

    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped.data) == CSS
    assert int(zipped.headers["Content-Length"]) < len(CSS)
    assert "Content-Encoding" not in plain.headers
    assert plain.data == CSS


def test_a_hashed_name_is_cached_for_years_as_immutable(client: TestClient) -> None:
    answer = client.get("/static/app.3f2a9c1e77.js")

    assert answer.headers["Cache-Control"] == "max-age=315360000, public, immutable"


def test_a_range_and_head_are_answered(client: TestClient) -> None:
    part = client.get("/static/css/site.css", headers={"Range": "bytes=0-3"}, status=206)
    head = client.head("/static/css/site.css")

    assert part.body == CSS[:4]
    assert head.body == b""
    assert head.headers["Content-Length"] == str(len(CSS))


def test_a_missing_file_is_a_404_that_names_it(client: TestClient) -> None:
    answer = client.get("/static/css/nope.css", status=404)

    assert answer.json["detail"] == "no static file at /static/css/nope.css"


def test_url_for_builds_the_files_urls(app: App) -> None:
    assert app.url_for("static", path="css/site.css") == "/static/css/site.css"
    assert [(route.path, route.endpoint) for route in app.routes] == [
        ("/static/<path:path>", "static")
    ]


def test_url_path_and_endpoint_can_be_chosen(tmp_path: Path, folder: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "a.txt").write_text("hello\n")
    app = App(secret_key=SECRET)
    Static(app, folder)
    Static(app, uploads, url_path="/media/", endpoint="media")

    assert app.url_for("media", path="a.txt") == "/media/a.txt"
    assert TestClient(app).get("/media/a.txt").text == "hello\n"
    assert TestClient(app).get("/static/css/site.css").body == CSS


def test_a_missing_folder_and_a_bad_url_path_are_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere"))):
        Static(App(secret_key=SECRET), tmp_path / "nowhere")
    with pytest.raises(ValueError, match="url_path must be a path below /"):
        Static(App(secret_key=SECRET), tmp_path, url_path="static")


def test_autorefresh_sees_a_file_added_later(tmp_path: Path, folder: Path) -> None:
    listed, looked_up = App(secret_key=SECRET), App(secret_key=SECRET)
    Static(listed, folder, autorefresh=False)
    Static(looked_up, folder, autorefresh=True)
    (folder / "late.txt").write_text("late\n")

    TestClient(listed).get("/static/late.txt", status=404)
    assert TestClient(looked_up).get("/static/late.txt").text == "late\n"


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
