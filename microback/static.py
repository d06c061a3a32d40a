"""Static files (CSS, scripts, images) served by the app: ``Static(app)``, through whitenoise.

For development and small deployments, where a separate web server is one more thing to run.
whitenoise (an optional extra: ``pip install 'microback[static]'``) does the careful part:
``ETag`` and ``Last-Modified`` with 304 answers, ``Range`` requests, ``Cache-Control`` (a
long, immutable one for file names that carry a content hash), a pre-compressed ``.gz`` or
``.br`` variant when the client accepts it (``python -m whitenoise.compress static/`` makes
them), and no path that escapes the folder.

The files are one route of the app, ``GET /static/<path:path>`` named ``static``, so
``app.url_for("static", path="site.css")`` (``static_url("site.css")`` in a template) builds
their URLs like any other route's, ``microback routes`` lists it, and the app's security
headers apply. docs/static.md says when to hand the files to a CDN or nginx instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

try:
    from whitenoise import WhiteNoise
except ImportError as exc:  # the extra is not installed
    raise ImportError(
        "microback's static files need whitenoise: pip install 'microback[static]'"
    ) from exc
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as _WerkzeugResponse

from .app import App
from .folders import app_folder
from .http import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["Static"]

#: A file name with a content hash of 8 or more hex digits before its extension
#: (``app.3f2a9c1e.js``): its content never changes, so it is cached for ten years.
HASHED_NAME = r"\.[0-9a-f]{8,}\.\w+$"


class Static:
    """Serve the files under ``directory`` at ``url_path`` (``/static/site.css``).

    ``directory`` may be absolute, or relative to the folder of the module that creates
    ``Static``. The files are listed once, at start-up, unless ``autorefresh`` (by default
    the app's ``debug`` setting) looks each one up per request, which sees new files.
    ``max_age`` is the ``Cache-Control`` lifetime in seconds of files whose names carry no
    content hash (a name such as ``app.3f2a9c1e.js`` is cached for ten years, immutable).
    """

    def __init__(
        self,
        app: App,
        directory: str | Path = "static",
        *,
        url_path: str = "/static",
        endpoint: str = "static",
        max_age: int = 60,
        autorefresh: bool | None = None,
    ) -> None:
        if not url_path.startswith("/") or url_path.rstrip("/") == "":
            raise ValueError(f"url_path must be a path below / such as '/static': {url_path!r}")
        self.directory = app_folder(directory, "Static")
        self.url_path = url_path.rstrip("/")
        self.endpoint = endpoint
        self._whitenoise = WhiteNoise(
            _missing,
            root=self.directory,
            prefix=self.url_path,
            autorefresh=app.settings.debug if autorefresh is None else autorefresh,
            max_age=max_age,
            immutable_file_test=HASHED_NAME,
        )
        app.add_route(f"{self.url_path}/<path:path>", self.serve, ["GET"], endpoint=endpoint)
        app.extensions["static"] = self

    def serve(self, request: Request, path: str) -> _WerkzeugResponse:
        """The route's handler: the file at ``path``, or 404."""
        response = Response.from_app(self._whitenoise, request.environ)
        # The body is the file, in blocks: handed to the server as it is.
        response.direct_passthrough = True
        return response


def _missing(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    # whitenoise calls the application it wraps for a path that is not one of its files.
    raise NotFound(f"no static file at {environ.get('PATH_INFO', '')}")
