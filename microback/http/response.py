"""Responses: werkzeug's, with a short path for bodies in memory, and the helpers that
build them (``json_response``, ``redirect``, ``add_vary``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import Headers
from werkzeug.utils import get_content_type
from werkzeug.utils import redirect as _werkzeug_redirect
from werkzeug.wrappers import Response as _WerkzeugResponse

from ._werkzeug import close_callbacks, fill_response, header_list
from .json_codec import json_dumps

if TYPE_CHECKING:
    from http import HTTPStatus

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["HeadersLike", "Response", "add_vary", "json_response", "redirect"]

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]


class Response(_WerkzeugResponse):
    """werkzeug's response, with ``text/html`` as the default type for text bodies."""

    default_mimetype = "text/html"

    def __init__(
        self,
        response: Iterable[bytes] | bytes | Iterable[str] | str | None = None,
        status: int | str | HTTPStatus | None = None,
        headers: HeadersLike | None = None,
        mimetype: str | None = None,
        content_type: str | None = None,
        direct_passthrough: bool = False,
    ) -> None:
        # The common case, Response("text") or Response(b"...", 201, mimetype=...), skips
        # werkzeug's general constructor (see buffered); anything else goes through it.
        if (
            headers is None
            and not direct_passthrough
            and isinstance(response, str | bytes)
            and (status is None or type(status) is int)
        ):
            body = response.encode() if isinstance(response, str) else response
            if content_type is None:
                content_type = _content_type(mimetype or self.default_mimetype)
            self._fill(body, self.default_status if status is None else status, content_type)
            return
        super().__init__(response, status, headers, mimetype, content_type, direct_passthrough)

    @classmethod
    def buffered(
        cls, body: bytes, status: int, content_type: str, headers: HeadersLike | None = None
    ) -> Response:
        """Build a response to a body in memory: what a handler's dict, list or str becomes.

        The same object the constructor makes, without its general work: ``Headers(...)``
        validates and case-folds each header, and the status is parsed from any form. For
        the two headers this response needs, that cost more than most handlers (half of a
        small JSON request). The status must be an int; *headers*, and headers set afterwards, are
        validated as usual.
        """
        response = cls.__new__(cls)
        response._fill(body, status, content_type)
        if headers:
            response.headers.extend(headers)
        return response

    def _fill(self, body: bytes, status: int, content_type: str) -> None:
        fill_response(
            self,
            [("Content-Type", content_type), ("Content-Length", str(len(body)))],
            status,
            _status_line(status),
        )
        self.direct_passthrough = False
        self.response = [body]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Start the response; a body already in memory takes a short path.

        werkzeug's general path copies the headers, rescans them and wraps the body in a
        closing iterator: a third of a small request's cost. A buffered body with its
        Content-Length and no Location, no close callbacks and an ordinary status needs
        none of that; anything else goes the general way.
        """
        body = self.response
        status = self.status_code
        if (
            type(body) is not list
            or self.direct_passthrough
            or close_callbacks(self)
            or status < 200
            or status in (204, 304)
            or not (
                (len(body) == 1 and type(body[0]) is bytes)  # what buffered() makes
                or all(type(chunk) is bytes for chunk in body)
            )
        ):
            return super().__call__(environ, start_response)
        # A copy of the list itself: to_wsgi_list() gets there through __iter__ and __len__.
        headers = (
            header_list(self.headers)
            if type(self.headers) is Headers
            else self.headers.to_wsgi_list()
        )
        has_length = False
        for name, _ in headers:
            lowered = name.lower()
            if lowered == "content-length":
                has_length = True
            elif lowered in ("location", "content-location"):
                return super().__call__(environ, start_response)
        if not has_length:
            return super().__call__(environ, start_response)
        start_response(self.status, headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else body


@functools.cache
def _content_type(mimetype: str) -> str:
    """``text/plain; charset=utf-8`` for ``text/plain``, as werkzeug completes a mimetype."""
    return get_content_type(mimetype, "utf-8")


@functools.cache
def _status_line(status: int) -> str:
    """``"200 OK"`` for 200, as werkzeug writes it (``"599 UNKNOWN"`` for an unnamed code)."""
    return _WerkzeugResponse(status=status).status


def json_response(data: Any, status: int = 200, headers: HeadersLike | None = None) -> Response:
    """Build an ``application/json`` response from any value :func:`json_dumps` accepts."""
    return Response.buffered(json_dumps(data).encode(), status, "application/json", headers)


def redirect(location: str, status: int = 302) -> Response:
    """Answer with a redirect to ``location`` (302 by default; 303 after a form POST)."""
    return _werkzeug_redirect(location, status, Response=Response)  # type: ignore[return-value]


def add_vary(response: _WerkzeugResponse, name: str) -> None:
    """Add ``name`` to the response's ``Vary`` header unless it is listed there (in any case).

    What ``response.vary.add(name)`` does, without parsing the header into a ``HeaderSet``
    and writing it back: that cost more than the rest of a small response.
    """
    headers = response.headers
    current = headers.getlist("Vary")  # getlist, unlike get, raises no KeyError inside
    if not current:
        headers.add("Vary", name)
        return
    listed = {part.strip().lower() for value in current for part in value.split(",")}
    if name.lower() not in listed and "*" not in listed:
        headers["Vary"] = ", ".join([*current, name])
