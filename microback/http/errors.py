"""How errors are answered: ``abort()``, and an RFC 9457 problem document
(``application/problem+json``) or a small HTML page for every HTTP error, depending on what
the client accepts.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from werkzeug.exceptions import HTTPException, default_exceptions

from .json_codec import json_dumps
from .problem import PROBLEM_JSON, FieldError, Problem, problem_document
from .response import HeadersLike, Response

if TYPE_CHECKING:
    from .request import Request

__all__ = ["abort", "error_response", "prefers_json", "problem_response"]


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


def problem_response(
    status: int,
    detail: str,
    errors: Iterable[FieldError] = (),
    *,
    headers: HeadersLike | None = None,
    **members: Any,
) -> Response:
    """Build an ``application/problem+json`` response, for an error handler of your own:
    ``problem_response(409, "out of stock", instance=request.path)``."""
    document = problem_document(status, detail, errors, **members)
    return Response.buffered(json_dumps(document).encode(), status, PROBLEM_JSON, headers)


def prefers_json(request: Request | None) -> bool:
    """Tell whether the client wants JSON rather than an HTML page (API client or browser)."""
    if request is None:
        return True
    if request.environ.get("HTTP_ACCEPT", "*/*") == "*/*":
        return True  # what curl, requests and most clients send: no need to parse it
    accept = request.accept_mimetypes
    # No Accept header, or */*, means an API client (curl, requests, fetch): JSON. Browsers
    # ask for text/html explicitly.
    return accept.best_match((PROBLEM_JSON, "application/json", "text/html")) != "text/html"


def error_response(
    request: Request | None, error: HTTPException, *, detail: str | None = None
) -> Response:
    """Answer an HTTP error as an RFC 9457 problem document, or a small HTML page for a
    browser; a :class:`Problem` (invalid fields) is a problem document whatever it accepts.

    The document is ``{"type", "title", "status", "detail"}`` (``detail`` is the message),
    the invalid fields of a :class:`Problem` as ``errors``, and ``request_id`` when the server
    gave the request one. Headers the error carries (``Allow`` on a 405,
    ``WWW-Authenticate`` on a 401, ``Retry-After``, and any given to :func:`abort`) are kept.
    ``detail`` here is a traceback (debug mode only), added as ``traceback`` or to the page.
    """
    status = error.code or 500
    message = error.description or error.name
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    headers.extend(getattr(error, "extra_headers", ()))
    if isinstance(error, Problem) or prefers_json(request):
        members: dict[str, str] = {}
        request_id = request.environ.get("microback.request_id") if request else None
        if request_id:
            members["request_id"] = request_id
        if detail is not None:
            members["traceback"] = detail
        errors = error.errors if isinstance(error, Problem) else ()
        return problem_response(status, message, errors, headers=headers, **members)
    page = (
        f"<!doctype html>\n<html lang=en>\n<meta charset=utf-8>\n"
        f"<title>{status} {html.escape(error.name)}</title>\n"
        f"<h1>{html.escape(error.name)}</h1>\n<p>{html.escape(message)}</p>\n"
    )
    if detail is not None:
        page += f"<pre>{html.escape(detail)}</pre>\n"
    return Response.buffered(page.encode(), status, "text/html; charset=utf-8", headers)
