"""How errors are answered: ``abort()``, and JSON or a small HTML page for every HTTP error,
depending on what the client accepts.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from werkzeug.exceptions import HTTPException, default_exceptions

from .json_codec import json_dumps
from .problem import PROBLEM_JSON, Problem, problem_document
from .response import HeadersLike, Response, json_response

if TYPE_CHECKING:
    from .request import Request

__all__ = ["abort", "error_response", "prefers_json"]


def abort(
    status: int, message: str | None = None, *, headers: HeadersLike | None = None
) -> NoReturn:
    """Stop handling the request and answer with an error ``status`` (400-599).

    ``message`` is shown to the client, as JSON or a small HTML page depending on what it
    accepts; ``headers`` are added to that response (``Retry-After``, for instance).
    """
    exception_class = default_exceptions.get(status)
    if exception_class is None:
        hint = "; use redirect() for 3xx" if 300 <= status < 400 else ""
        raise ValueError(
            f"abort() takes an HTTP error status from 400 to 599 that werkzeug knows, "
            f"got {status}{hint}"
        )
    exception = exception_class(description=message)
    if headers is not None:
        exception.extra_headers = list(  # type: ignore[attr-defined]
            headers.items() if isinstance(headers, Mapping) else headers
        )
    raise exception


def prefers_json(request: Request | None) -> bool:
    """Tell whether the client wants JSON rather than an HTML page (API client or browser)."""
    if request is None:
        return True
    if request.environ.get("HTTP_ACCEPT", "*/*") == "*/*":
        return True  # what curl, requests and most clients send: no need to parse it
    accept = request.accept_mimetypes
    # No Accept header, or */*, means an API client (curl, requests, fetch): JSON. Browsers
    # ask for text/html explicitly.
    return accept.best_match(("application/json", "text/html")) != "text/html"


def error_response(
    request: Request | None, error: HTTPException, *, detail: str | None = None
) -> Response:
    """Answer an HTTP error as ``{"error": {"status", "message"}}`` or a small HTML page;
    a :class:`Problem` as an RFC 9457 problem document, whatever the client accepts.

    Headers the error carries (``Allow`` on a 405, ``WWW-Authenticate`` on a 401,
    ``Retry-After``, and any given to :func:`abort`) are kept. ``detail`` (a traceback, in
    debug mode only) is appended to the body.
    """
    status = error.code or 500
    message = error.description or error.name
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    headers.extend(getattr(error, "extra_headers", ()))
    if isinstance(error, Problem) and detail is None:
        document = problem_document(status, message, error.errors)
        return Response.buffered(json_dumps(document).encode(), status, PROBLEM_JSON, headers)
    if prefers_json(request):
        body: dict[str, Any] = {"status": status, "message": message}
        if detail is not None:
            body["detail"] = detail
        return json_response({"error": body}, status, headers)
    page = (
        f"<!doctype html>\n<html lang=en>\n<meta charset=utf-8>\n"
        f"<title>{status} {html.escape(error.name)}</title>\n"
        f"<h1>{html.escape(error.name)}</h1>\n<p>{html.escape(message)}</p>\n"
    )
    if detail is not None:
        page += f"<pre>{html.escape(detail)}</pre>\n"
    return Response.buffered(page.encode(), status, "text/html; charset=utf-8", headers)
