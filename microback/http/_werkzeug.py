"""Every use of a private name of werkzeug, in one place (issue 13).

Each name below says why microback needs it; each is pinned by a test in
``tests/test_http_werkzeug_seam.py``, so a werkzeug release that changes one fails that test by
name. pyproject.toml caps werkzeug below its next major version; ``.ci/newest`` runs the suite
against the newest releases so the cap is raised on purpose.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any

from werkzeug._internal import _wsgi_decoding_dance
from werkzeug.datastructures import Headers
from werkzeug.wsgi import _get_server

if TYPE_CHECKING:
    from collections.abc import Callable

    from werkzeug.wrappers import Response

__all__ = [
    "cache_body",
    "close_callbacks",
    "decode_wsgi_path",
    "fill_response",
    "header_list",
    "server_of",
]

#: PATH_INFO and SCRIPT_NAME decoded as werkzeug's own Request does, so values match its.
decode_wsgi_path: Callable[[str], str] = _wsgi_decoding_dance

#: The server's address from the environ, as werkzeug's own Request.server works it out.
server_of: Callable[[Any], tuple[str, int | None] | None] = _get_server

#: A response's close callbacks (``call_on_close`` appends to it; no public reader exists).
close_callbacks: Callable[[Response], list[Callable[[], Any]]] = attrgetter("_on_close")


def cache_body(request: Any, data: bytes) -> None:
    """Keep a body read past werkzeug's stream where ``get_data`` and form parsing look for it.

    Form parsing reads ``_cached_data`` when it is there instead of the (consumed) stream.
    """
    request._cached_data = data


def header_list(headers: Headers) -> list[tuple[str, str]]:
    """A copy of the stored (name, value) list: ``to_wsgi_list()`` reaches it item by item."""
    return headers._list.copy()


def fill_response(
    response: Response, headers: list[tuple[str, str]], status: int, line: str
) -> None:
    """Set what werkzeug's ``Response.__init__`` sets, from values known valid (no re-parsing)."""
    prebuilt = Headers()
    prebuilt._list = headers
    response.headers = prebuilt
    response._status_code = status
    response._status = line
    response._on_close = []
