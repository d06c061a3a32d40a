"""The document and the docs page served by the app (enable_openapi), and the command that
prints the document (microback openapi)."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from microback import App
from microback.cli import main
from microback.openapi import enable_openapi, openapi_document
from microback.testing import TestClient

from .rich_app import build


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    return build(f"sqlite:///{tmp_path_factory.mktemp('served') / 'rich.db'}")


@pytest.fixture
def client(app: App) -> TestClient:
    return TestClient(app)


def test_the_document_is_served_as_json(app: App, client: TestClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200
    assert response.content_type == "application/json"
    document = response.json
    assert document["info"]["title"] == "Orders"
    assert document == json.loads(json.dumps(app.extensions["openapi"].document()))


def test_the_docs_page_loads_swagger_ui_from_the_app_itself(client: TestClient) -> None:
    page = client.get("/docs")

    assert page.content_type == "text/html"
    assert "<title>Orders</title>" in page.text
    assert '<script src="/docs/swagger-ui-bundle.js"></script>' in page.text
    assert '<link rel="stylesheet" href="/docs/swagger-ui.css">' in page.text
    assert "http" not in page.text.replace("<!doctype html>", "")  # nothing from elsewhere
    initializer = client.get("/docs/swagger-initializer.js")
    assert initializer.content_type == "text/javascript"
    assert 'url: "/openapi.json"' in initializer.text
    bundle = client.get("/docs/swagger-ui-bundle.js")
    assert bundle.content_type == "text/javascript"
    assert b"SwaggerUIBundle" in bundle.body
    assert client.get("/docs/swagger-ui.css").content_type == "text/css"
    assert "Apache License" in client.get("/docs/LICENSE").text
    assert "SmartBear" in client.get("/docs/NOTICE").text
    client.get("/docs/app.py", status=404)


def test_the_document_alone_without_docs_page_and_under_other_paths() -> None:
    app = App()
    enable_openapi(app, path="/api/schema.json", docs_path=None)
    client = TestClient(app)

    assert client.get("/api/schema.json").json["info"] == {"title": "API", "version": "0.1.0"}
    client.get("/docs", status=404)
    with pytest.raises(ValueError, match="docs_path must start with '/', got 'docs'"):
        enable_openapi(App(), docs_path="docs")


def test_a_mounted_app_points_its_page_at_its_own_document() -> None:
    app = App()
    enable_openapi(app, docs_path="/api-docs/")
    client = TestClient(app, extra_environ={"SCRIPT_NAME": "/shop"})

    assert '<script src="/shop/api-docs/swagger-ui-bundle.js">' in client.get("/api-docs").text
    script = client.get("/api-docs/swagger-initializer.js").text
    assert 'url: "/shop/openapi.json"' in script


# --- microback openapi TARGET -------------------------------------------------------------

APP = """
    from microback import App
    from microback.openapi import enable_openapi

    app = App()
    enable_openapi(app, title="Shop", version="3.0")


    @app.get("/items/<int:item_id>")
    def item(request, item_id):
        return {}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "shop.py").write_text(textwrap.dedent(APP))
    yield tmp_path
    sys.modules.pop("shop", None)


def test_the_command_prints_the_served_document_as_json(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["openapi", "shop:app"]) == 0

    printed = json.loads(capsys.readouterr().out)
    app = sys.modules["shop"].app
    assert printed == openapi_document(app, title="Shop", version="3.0")
    assert list(printed["paths"]) == ["/items/{item_id}"]


def test_the_command_prints_yaml_and_takes_a_title_and_version(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["openapi", "shop:app", "--yaml", "--title", "Store", "--version", "4"]) == 0

    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["info"] == {"title": "Store", "version": "4"}
    assert printed["openapi"] == "3.1.0"


def test_the_command_refuses_what_is_not_an_app_in_one_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "plain.py").write_text("def app(environ, start_response):\n    return []\n")

    assert main(["openapi", "plain:app"]) == 2
    assert capsys.readouterr().err == (
        "microback: error: 'plain:app' is not a microback App; 'microback openapi' reads an "
        "App's routes: point TARGET at the App, not at middleware around it\n"
    )
    assert main(["openapi", "no_such_module:app"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    sys.modules.pop("plain", None)
