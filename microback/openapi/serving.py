"""The OpenAPI document and its docs page as routes of the app, opt-in.

``enable_openapi(app)`` answers ``GET /openapi.json`` with the document and ``GET /docs``
with Swagger UI, whose "Try it out" sends real requests to the app. The page needs no
internet access: Swagger UI's script and style sheet (from the ``swagger-ui-dist`` npm
package, Apache License 2.0, its LICENSE and NOTICE beside them) are shipped in
``microback/openapi/static/`` and served by the app itself. Neither route is in the document.
"""

from __future__ import annotations

import html
import importlib.resources
from typing import Any

from ..app import App
from ..http import Request, Response, json_dumps
from .document import openapi_document
from .facts import operation

__all__ = ["SWAGGER_UI_VERSION", "OpenAPI", "enable_openapi"]

#: The version of Swagger UI in microback/openapi/static/ (swagger-ui-dist on npm).
SWAGGER_UI_VERSION = "5.35.0"

_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
    "NOTICE": "text/plain; charset=utf-8",
}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{base}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script src="{base}/swagger-initializer.js"></script>
</body>
</html>
"""
# A file, not an inline script, so a Content-Security-Policy without 'unsafe-inline' allows it.
_INITIALIZER = """window.ui = SwaggerUIBundle({{
  url: {url},
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
}});
"""


class OpenAPI:
    """The document of ``app``, built on first use (every route registered by then) and kept;
    ``app.extensions["openapi"]``. :func:`enable_openapi` makes it and serves it."""

    def __init__(self, app: App, title: str, version: str, description: str | None) -> None:
        self.app = app
        self.title = title
        self.version = version
        self.description = description
        self._document: dict[str, Any] | None = None
        self._json: bytes | None = None
        app.extensions["openapi"] = self

    def document(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the app, as JSON-ready data."""
        if self._document is None:
            self._document = openapi_document(
                self.app, title=self.title, version=self.version, description=self.description
            )
        return self._document

    def json(self) -> bytes:
        """The document, encoded once."""
        if self._json is None:
            self._json = json_dumps(self.document()).encode()
        return self._json


def _serve_document(openapi: OpenAPI, path: str) -> None:
    @operation(include=False)
    def openapi_json(request: Request) -> Response:
        return Response.buffered(openapi.json(), 200, "application/json")

    openapi.app.add_route(path, openapi_json, ["GET"], endpoint="openapi")


def _serve_docs(openapi: OpenAPI, path: str, docs_path: str) -> None:
    """Swagger UI at ``docs_path`` (``""`` for the root), reading the document at ``path``."""
    hidden = operation(include=False)

    @hidden
    def openapi_docs(request: Request) -> Response:
        base = html.escape(request.script_root + docs_path, quote=True)
        page = _PAGE.format(title=html.escape(openapi.title), base=base)
        return Response.buffered(page.encode(), 200, "text/html; charset=utf-8")

    @hidden
    def openapi_docs_initializer(request: Request) -> Response:
        script = _INITIALIZER.format(url=json_dumps(request.script_root + path))
        return Response.buffered(script.encode(), 200, "text/javascript; charset=utf-8")

    @hidden
    def openapi_docs_asset(request: Request, name: str) -> Response:
        cache = [("Cache-Control", "public, max-age=86400")]
        return Response.buffered(_asset(name), 200, _ASSETS[name], cache)

    app = openapi.app
    app.add_route(docs_path or "/", openapi_docs, ["GET"], endpoint="openapi_docs")
    app.add_route(
        f"{docs_path}/swagger-initializer.js",
        openapi_docs_initializer,
        ["GET"],
        endpoint="openapi_docs_initializer",
    )
    names = ", ".join(f"'{name}'" for name in _ASSETS)
    app.add_route(
        f"{docs_path}/<any({names}):name>",
        openapi_docs_asset,
        ["GET"],
        endpoint="openapi_docs_asset",
    )


_LOADED: dict[str, bytes] = {}


def _asset(name: str) -> bytes:
    """A file of Swagger UI, read from the package once."""
    body = _LOADED.get(name)
    if body is None:
        body = _LOADED[name] = (
            importlib.resources.files(__package__) / "static" / name
        ).read_bytes()
    return body


def enable_openapi(
    app: App,
    *,
    path: str = "/openapi.json",
    docs_path: str | None = "/docs",
    title: str = "API",
    version: str = "0.1.0",
    description: str | None = None,
) -> OpenAPI:
    """Serve ``app``'s OpenAPI 3.1 document at ``path`` and Swagger UI at ``docs_path``.

    ``docs_path=None`` serves the document alone. ``title``, ``version`` and
    ``description`` are the API's, for the document's ``info``. Call it after creating the
    app; routes registered later are in the document too (it is built on the first request).
    """
    for name, value in (("path", path), ("docs_path", docs_path)):
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{name} must start with '/', got {value!r}")
    openapi = OpenAPI(app, title, version, description)
    _serve_document(openapi, path)
    if docs_path is not None:
        _serve_docs(openapi, path, docs_path.rstrip("/"))
    return openapi
