"""Request and Response on werkzeug, the JSON codec, and how errors are answered.

This layer does no I/O of its own and knows nothing of apps, databases or servers. Parsing is
lazy (werkzeug parses headers, query and body only when asked), so a request pays only for
what its handler reads.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import functools
import html
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar, cast, overload

from werkzeug._internal import _wsgi_decoding_dance
from werkzeug.datastructures import EnvironHeaders, Headers, ImmutableMultiDict
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    RequestEntityTooLarge,
    default_exceptions,
)
from werkzeug.utils import cached_property, get_content_type
from werkzeug.utils import redirect as _werkzeug_redirect
from werkzeug.wrappers import Request as _WerkzeugRequest
from werkzeug.wrappers import Response as _WerkzeugResponse
from werkzeug.wsgi import LimitedStream, _get_server, get_input_stream

from .routing import INT64_MAX, INT64_MIN

if TYPE_CHECKING:
    from http import HTTPStatus

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from .app import App

__all__ = [
    "BodyTooLarge",
    "HeadersLike",
    "InvalidField",
    "InvalidParameter",
    "JSONObject",
    "MissingField",
    "Params",
    "Request",
    "Response",
    "abort",
    "add_vary",
    "error_response",
    "json_dumps",
    "json_loads",
    "json_response",
    "prefers_json",
    "redirect",
]

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]
_T = TypeVar("_T")
_MISSING: Any = object()
_SHOWN_VALUE_LIMIT = 40


# --- JSON -------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# One encoder for every call: json.dumps() with any option but the defaults builds a new
# JSONEncoder each time, which cost more than encoding a small object.
_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
)
# And the C encoder under it, made once: JSONEncoder.encode() builds it anew on every call,
# which was two thirds of encoding {"message": "Hello, World!"} (1.28 -> 0.43 us). It is
# made without the dict of objects being encoded that finds cycles, because one shared dict
# would be corrupted by concurrent calls; C recursion has its own guard, so a cycle ends in a
# RecursionError, answered below as JSONEncoder's ValueError.
_make_c_encoder = getattr(json.encoder, "c_make_encoder", None)  # None without the C module
_c_encoder = (
    _make_c_encoder(
        None, _json_default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if _make_c_encoder is not None
    else None
)


def json_dumps(value: Any) -> str:
    """Serialize compactly; dates, UUIDs, decimals, dataclasses and sets are understood.

    NaN and infinity raise ``ValueError``: they are not JSON and break strict clients. So
    does a value that contains itself.
    """
    if _c_encoder is None:
        return _encoder.encode(value)
    try:
        return "".join(_c_encoder(value, 0))
    except RecursionError:
        raise ValueError("the value contains itself, or is nested too deeply for JSON") from None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # json.loads turns 1e999 into inf, which no JSON encoder (ours included) writes back.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {_shown(text)} is too large for a 64-bit float")
    return value


# A \uD800-\uDFFF escape, or such a character in a str: json.loads keeps a lone one in the
# string it returns, and then nothing can encode the string as UTF-8 (a 500 on the way out).
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE_CHARACTER = re.compile(r"[\ud800-\udfff]")


def _lone_surrogate(value: Any) -> str | None:
    """The first string in ``value`` (keys included) that holds a lone surrogate, if any."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE_CHARACTER.search(item):
                return item
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def json_loads(
    data: str | bytes, *, object_hook: Callable[[dict[str, Any]], Any] | None = None
) -> Any:
    """Parse strictly: UTF-8 only (RFC 8259), no NaN/Infinity, bounded nesting, numbers that
    fit a 64-bit float (no ``1e999``), strings of Unicode characters (no lone ``"\\ud800"``).

    Every failure is a ``ValueError``, so a hostile body cannot turn into a 500.
    """
    if not isinstance(data, str):
        # json.loads would guess UTF-16/32 from the first bytes; JSON on the wire is UTF-8.
        data = data.decode("utf-8-sig")
    try:
        value = json.loads(
            data,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_hook=object_hook,
        )
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    # Only a body with such an escape is walked: escaped pairs are joined into one character.
    if _SURROGATE.search(data) and (bad := _lone_surrogate(value)) is not None:
        code = f"\\u{ord(_SURROGATE_CHARACTER.findall(bad)[0]):04x}"
        raise ValueError(f"a string holds a lone UTF-16 surrogate ({code}), not a character")
    return value


class MissingField(BadRequest, KeyError):
    """A handler read a field the JSON body does not have; answered 400 naming it."""

    def __init__(self, field: str) -> None:
        BadRequest.__init__(self, f"the JSON body has no {field!r} field")
        self.field = field


class InvalidField(BadRequest, ValueError):
    """A JSON body field has the wrong type or is out of range; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"the {field!r} field {problem}")
        self.field = field


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if abs(value) < 1e15 else "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


class JSONObject(dict[str, Any]):
    """A JSON object from a request body, with typed getters that answer 400 naming the field.

    ``data["text"]`` on a body without ``text`` is a 400 (:class:`MissingField`, also a
    ``KeyError``), not a 500. ``data.get_str("email")``, ``get_int``, ``get_float``,
    ``get_bool``, ``get_list`` and ``get_object`` also check the type (and the range or
    length): "the 'age' field must be an integer from 0 to 150, got 200". Without a default
    the field is required; ``null`` counts as absent.
    """

    __slots__ = ()

    def __missing__(self, key: str) -> Any:
        raise MissingField(key)

    def _typed(self, name: str, default: Any, accept: Callable[[Any], bool], expected: str) -> Any:
        value = self.get(name)
        if value is None:
            if default is _MISSING:
                raise MissingField(name)
            return default
        if not accept(value):
            raise InvalidField(name, f"must be {expected}, got {_json_kind(value)}")
        return value

    def get_str(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        max_length: int | None = None,
        choices: Iterable[str] | None = None,
    ) -> Any:
        """Read a string, optionally bounded in length or limited to ``choices``."""
        value = self._typed(name, default, lambda v: isinstance(v, str), "a string")
        if value is default:
            return value
        problem = _string_problem(value, max_length, choices)
        if problem:
            raise InvalidField(name, problem)
        return value

    def get_int(
        self, name: str, default: Any = _MISSING, *, min: int | None = None, max: int | None = None
    ) -> Any:
        """Read a whole number (not a boolean, not 1.5) within ``[min, max]``.

        An unset bound is a signed 64-bit integer's: no database column holds more, and
        SQLite's driver fails on it with an error that names no field.
        """
        expected = _describe_range("an integer", min, max)

        def accept(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and _within(v, min, max)

        value = self._typed(name, default, accept, expected)
        if value is not default and not INT64_MIN <= value <= INT64_MAX:
            low = INT64_MIN if min is None else min
            high = INT64_MAX if max is None else max
            raise InvalidField(name, f"must be {_describe_range('an integer', low, high)}")
        return value

    def get_float(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        min: float | None = None,
        max: float | None = None,
    ) -> Any:
        """Read a number within ``[min, max]``, given back as a float."""
        expected = _describe_range("a number", min, max)

        def accept(v: Any) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and _within(v, min, max)

        value = self._typed(name, default, accept, expected)
        if value is default:
            return value
        try:
            return float(value)
        except OverflowError:  # an integer beyond the floats, such as 10**400
            raise InvalidField(name, f"must be {expected}, got a number too large") from None

    def get_bool(self, name: str, default: Any = _MISSING) -> Any:
        """Read ``true`` or ``false``."""
        return self._typed(name, default, lambda v: isinstance(v, bool), "true or false")

    def get_list(self, name: str, default: Any = _MISSING) -> Any:
        """Read a list (its items are the handler's to check)."""
        return self._typed(name, default, lambda v: isinstance(v, list), "a list")

    def get_object(self, name: str, default: Any = _MISSING) -> Any:
        """Read a nested object, itself a :class:`JSONObject`."""
        return self._typed(name, default, lambda v: isinstance(v, dict), "an object")


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _string_problem(value: str, max_length: int | None, choices: Iterable[str] | None) -> str:
    """Say what is wrong with a string parameter or field ("" when nothing is)."""
    if max_length is not None and len(value) > max_length:
        return f"must be at most {max_length} characters long"
    if choices is not None and value not in (allowed := list(choices)):
        listed = ", ".join(repr(choice) for choice in allowed)
        return f"must be one of {listed}, got {_shown(value)}"
    return ""


class _StrictJSON:
    """The ``json_module`` werkzeug's ``get_json`` calls: our strict loader, stdlib dumps."""

    @staticmethod
    def loads(data: str | bytes) -> Any:
        return json_loads(data, object_hook=JSONObject)

    dumps = staticmethod(json_dumps)


# --- Requests ---------------------------------------------------------------------------------


class InvalidParameter(BadRequest, ValueError):
    """A query or form parameter is missing or malformed; ``parameter`` names it."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"the {parameter!r} parameter {problem}")
        self.parameter = parameter


def _describe_range(kind: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{kind} from {low} to {high}"
    if low is not None:
        return f"{kind} of at least {low}"
    if high is not None:
        return f"{kind} of at most {high}"
    return kind


def _shown(raw: str) -> str:
    if len(raw) > _SHOWN_VALUE_LIMIT:
        raw = raw[:_SHOWN_VALUE_LIMIT] + "…"
    return repr(raw)


class Params(ImmutableMultiDict[str, str]):
    """Query or form parameters with typed getters that answer 400 naming the parameter.

    ``request.args.get_int("limit", default=20, min=1, max=100)`` returns an ``int`` or raises
    :class:`InvalidParameter` ("the 'limit' parameter must be an integer from 1 to 100, got
    'abc'"). Without a default the parameter is required.
    """

    def _raw(self, name: str, default: Any, *, empty_is_missing: bool = True) -> str | None:
        raw = self.get(name)
        # An empty form field or "?limit=" means "not given", as HTML forms send it.
        if raw == "" and empty_is_missing:
            raw = None
        if raw is None and default is _MISSING:
            raise InvalidParameter(name, "is required")
        return raw

    @overload
    def get_int(self, name: str, *, min: int | None = ..., max: int | None = ...) -> int: ...
    @overload
    def get_int(
        self, name: str, default: _T, *, min: int | None = ..., max: int | None = ...
    ) -> int | _T: ...
    def get_int(
        self, name: str, default: Any = _MISSING, *, min: int | None = None, max: int | None = None
    ) -> Any:
        """Read an integer within ``[min, max]``."""
        raw = self._raw(name, default)
        if raw is None:
            return default
        text = raw.strip()
        # int() also takes "1_000" and "+5"; a query parameter should be plain digits.
        digits = text[1:] if text[:1] == "-" else text
        if digits.isascii() and digits.isdigit() and len(digits) <= 18:
            value = int(text)
            if _within(value, min, max):
                return value
        expected = _describe_range("an integer", min, max)
        raise InvalidParameter(name, f"must be {expected}, got {_shown(raw)}")

    @overload
    def get_float(
        self, name: str, *, min: float | None = ..., max: float | None = ...
    ) -> float: ...
    @overload
    def get_float(
        self, name: str, default: _T, *, min: float | None = ..., max: float | None = ...
    ) -> float | _T: ...
    def get_float(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        min: float | None = None,
        max: float | None = None,
    ) -> Any:
        """Read a finite number within ``[min, max]``."""
        raw = self._raw(name, default)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and _within(value, min, max):
            return value
        expected = _describe_range("a number", min, max)
        raise InvalidParameter(name, f"must be {expected}, got {_shown(raw)}")

    @overload
    def get_bool(self, name: str) -> bool: ...
    @overload
    def get_bool(self, name: str, default: _T) -> bool | _T: ...
    def get_bool(self, name: str, default: Any = _MISSING) -> Any:
        """Read ``true/false``, ``1/0``, ``yes/no`` or ``on/off`` (any case)."""
        raw = self._raw(name, default)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise InvalidParameter(name, f"must be true or false, got {_shown(raw)}")

    @overload
    def get_str(
        self, name: str, *, max_length: int | None = ..., choices: Iterable[str] | None = ...
    ) -> str: ...
    @overload
    def get_str(
        self,
        name: str,
        default: _T,
        *,
        max_length: int | None = ...,
        choices: Iterable[str] | None = ...,
    ) -> str | _T: ...
    def get_str(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        max_length: int | None = None,
        choices: Iterable[str] | None = None,
    ) -> Any:
        """Read a string, optionally bounded in length or limited to ``choices``.

        Unlike the other getters, an empty value is a value (``""``), not a missing one.
        """
        raw = self._raw(name, default, empty_is_missing=False)
        if raw is None:
            return default
        problem = _string_problem(raw, max_length, choices)
        if problem:
            raise InvalidParameter(name, problem)
        return raw


class BodyTooLarge(RequestEntityTooLarge):
    """A body sent without Content-Length went past ``max_content_length`` as it was read."""


class _MaxBodyStream(LimitedStream):
    """``max_content_length`` for a body without Content-Length (chunked).

    werkzeug's limited stream stops at the limit without saying whether more was sent, so a
    larger body would reach the handler cut short. This one looks one byte further and
    answers 413 if there is one. It is a *maximum* (``is_max``): the end of the stream
    before the limit is the end of the body, not a client that went away (the server that
    set ``wsgi.input_terminated`` reports a body cut short by raising from ``read``).
    """

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        super().__init__(stream, limit, is_max=True)

    def on_exhausted(self) -> None:
        if self._stream.read(1):
            raise BodyTooLarge()

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted:  # werkzeug's readall stops here without looking further
            self.on_exhausted()
        return data


class Request(_WerkzeugRequest):
    """The request a handler receives: werkzeug's, with strict JSON and typed parameters.

    ``request.app`` is the app serving it; ``request.endpoint`` and ``request.view_args`` say
    which route matched (``None`` before routing, or when nothing matched).
    ``request.exception`` is the exception that escaped the handler (or a ``before_request``
    hook), as ``after_request`` hooks see it; ``None`` when the handler returned.
    """

    parameter_storage_class = Params
    json_module = _StrictJSON  # type: ignore[assignment]
    app: App
    endpoint: str | None = None
    view_args: dict[str, Any] | None = None
    exception: BaseException | None = None

    # Narrow werkzeug's types: parameter_storage_class makes these Params.
    args: Params
    form: Params

    def __init__(
        self, environ: WSGIEnvironment, populate_request: bool = True, shallow: bool = False
    ) -> None:
        # werkzeug's constructor, except that what many requests never read (the server
        # address, the mount point, the headers object) is worked out on first use: 1.5 µs
        # of a 9 µs JSON request went to building them. The environ is read with werkzeug's
        # own (private) helpers, so the values are its; tests/test_http.py compares them.
        self.environ = environ
        self.shallow = shallow
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.scheme = environ.get("wsgi.url_scheme", "http")
        self.path = "/" + _wsgi_decoding_dance(environ.get("PATH_INFO") or "").lstrip("/")
        self.query_string = environ.get("QUERY_STRING", "").encode("latin1")
        self.remote_addr = environ.get("REMOTE_ADDR")
        if populate_request and not shallow:
            environ["werkzeug.request"] = self

    @cached_property
    def server(self) -> tuple[str, int | None] | None:
        """The server's address: ``(host, port)``, ``(path, None)`` for a Unix socket."""
        return _get_server(self.environ)

    @cached_property
    def root_path(self) -> str:
        """Where the app is mounted (``SCRIPT_NAME``), without a trailing slash."""
        return _wsgi_decoding_dance(self.environ.get("SCRIPT_NAME") or "").rstrip("/")

    @cached_property
    def headers(self) -> EnvironHeaders:  # type: ignore[override]
        """The request's headers, read from the environ."""
        return EnvironHeaders(self.environ)

    @cached_property
    def stream(self) -> IO[bytes]:
        """The body, limited to ``max_content_length`` whether or not it has a length."""
        if self.shallow:
            raise RuntimeError("this request was created shallow; its body cannot be read")
        if (
            self.content_length is None
            and self.max_content_length is not None
            and "wsgi.input_terminated" in self.environ
        ):
            return cast(
                IO[bytes], _MaxBodyStream(self.environ["wsgi.input"], self.max_content_length)
            )
        return get_input_stream(self.environ, max_content_length=self.max_content_length)

    @property
    def json_object(self) -> JSONObject:
        """The JSON body, which must be an object: a list or a scalar is a 400."""
        data = self.json
        if not isinstance(data, JSONObject):
            raise BadRequest(f"the JSON body must be an object, got {_json_kind(data)}")
        return data

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        """Answer 400 with what is wrong, for both a wrong content type and a broken body."""
        if e is None:
            got = repr(self.mimetype) if self.mimetype else "no Content-Type"
            raise BadRequest(
                f"expected a JSON body with Content-Type: application/json, got {got}"
            )
        if isinstance(e, json.JSONDecodeError):
            if not e.doc.strip():
                raise BadRequest("the request body is empty; expected JSON")
            raise BadRequest(
                f"malformed JSON in the request body: {e.msg} (line {e.lineno}, column {e.colno})"
            )
        if isinstance(e, UnicodeDecodeError):
            raise BadRequest("the JSON request body is not valid UTF-8")
        raise BadRequest(f"malformed JSON in the request body: {e}")


# --- Responses --------------------------------------------------------------------------------


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
        the two headers this response needs, that cost more than most handlers (1.9 µs of
        3.8). The status must be an int; *headers*, and headers set afterwards, are
        validated as usual.
        """
        response = cls.__new__(cls)
        response._fill(body, status, content_type)
        if headers:
            response.headers.extend(headers)
        return response

    def _fill(self, body: bytes, status: int, content_type: str) -> None:
        headers = Headers()
        headers._list = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        self.headers = headers
        self._status_code = status
        self._status = _status_line(status)
        self.direct_passthrough = False
        self._on_close = []
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
            or self._on_close
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
            self.headers._list.copy()
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


def add_vary(response: _WerkzeugResponse, name: str) -> None:
    """Add ``name`` to the response's ``Vary`` header unless it is listed there (in any case).

    What ``response.vary.add(name)`` does, without parsing the header into a ``HeaderSet``
    and writing it back: that cost more than the rest of a small response (3.6 µs).
    """
    headers = response.headers
    current = headers.getlist("Vary")  # getlist, unlike get, raises no KeyError inside
    if not current:
        headers.add("Vary", name)
        return
    listed = {part.strip().lower() for value in current for part in value.split(",")}
    if name.lower() not in listed and "*" not in listed:
        headers["Vary"] = ", ".join([*current, name])


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
    """Answer an HTTP error as ``{"error": {"status", "message"}}`` or a small HTML page.

    Headers the error carries (``Allow`` on a 405, ``WWW-Authenticate`` on a 401,
    ``Retry-After``, and any given to :func:`abort`) are kept. ``detail`` (a traceback, in
    debug mode only) is appended to the body.
    """
    status = error.code or 500
    message = error.description or error.name
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    headers.extend(getattr(error, "extra_headers", ()))
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
