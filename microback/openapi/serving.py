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
    """The document of ``app`` and the routes that serve it; ``app.extensions["openapi"]``.

    The document is built on first use, once every route is registered, and kept.
    """

    def __init__(
        self,
        app: App,
        *,
        path: str = "/openapi.json",
        docs_path: str | None = "/docs",
        title: str = "API",
        version: str = "0.1.0",
        description: str | None = None,
    ) -> None:
        for name, value in (("path", path), ("docs_path", docs_path)):
            if value is not None and not value.startswith("/"):
                raise ValueError(f"{name} must start with '/', got {value!r}")
        self.app = app
        self.path = path
        self.docs_path = docs_path.rstrip("/") if docs_path else None
        self.title = title
        self.version = version
        self.description = description
        self._document: dict[str, Any] | None = None
        self._json: bytes | None = None
        app.extensions["openapi"] = self
        self._add_routes()

    def document(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the app, as JSON-ready data."""
        if self._document is None:
            self._document = openapi_document(
                self.app, title=self.title, version=self.version, description=self.description
            )
        return self._document

    def _add_routes(self) -> None:
        hidden = operation(include=False)

        @hidden
        def openapi_json(request: Request) -> Response:
            if self._json is None:
                self._json = json_dumps(self.document()).encode()
            return Response.buffered(self._json, 200, "application/json")

        self.app.add_route(self.path, openapi_json, ["GET"], endpoint="openapi")
        docs_path = self.docs_path
        if docs_path is None:
            return

        @hidden
        def openapi_docs(request: Request) -> Response:
            base = html.escape(request.script_root + docs_path, quote=True)
            page = _PAGE.format(title=html.escape(self.title), base=base)
            return Response.buffered(page.encode(), 200, "text/html; charset=utf-8")

        @hidden
        def openapi_docs_initializer(request: Request) -> Response:
            script = _INITIALIZER.format(url=json_dumps(request.script_root + self.path))
            return Response.buffered(script.encode(), 200, "text/javascript; charset=utf-8")

        @hidden
        def openapi_docs_asset(request: Request, name: str) -> Response:
            body = _asset(name)
            cache = [("Cache-Control", "public, max-age=86400")]
            return Response.buffered(body, 200, _ASSETS[name], cache)

        docs = docs_path or "/"
        self.app.add_route(docs, openapi_docs, ["GET"], endpoint="openapi_docs")
        self.app.add_route(
            f"{docs_path}/swagger-initializer.js",
            openapi_docs_initializer,
            ["GET"],
            endpoint="openapi_docs_initializer",
        )
        names = ", ".join(f"'{name}'" for name in _ASSETS)
        self.app.add_route(
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
            (importlib.resources.files(__package__) / "static" / name).read_bytes()
        )
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
    return OpenAPI(
        app,
        path=path,
        docs_path=docs_path,
        title=title,
        version=version,
        description=description,
    )
