"""The request a handler receives: werkzeug's, with strict JSON, typed parameters and a
body limit that also holds for a body sent without Content-Length.

Parsing is lazy (werkzeug parses headers, query and body only when asked), so a request pays
only for what its handler reads. The app is seen through :class:`ServingApp`, a protocol, so
this package never imports :mod:`microback.app`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, cast, overload

from werkzeug.datastructures import EnvironHeaders, ImmutableMultiDict
from werkzeug.exceptions import BadRequest, ClientDisconnected, RequestEntityTooLarge
from werkzeug.sansio.http import parse_cookie
from werkzeug.utils import cached_property
from werkzeug.wrappers import Request as _WerkzeugRequest
from werkzeug.wsgi import LimitedStream, get_content_length, get_input_stream

from ._werkzeug import cache_body, decode_wsgi_path, server_of
from .json_codec import json_dumps, json_loads
from .params import JSONObject, Params, _json_kind

if TYPE_CHECKING:
    import logging

    from _typeshed.wsgi import WSGIEnvironment

    from ..settings import Settings

__all__ = ["SAFE_METHODS", "BodyTooLarge", "Request", "ServingApp", "SessionState"]

#: Methods that must not change anything (RFC 9110 9.2.1): no CSRF check, no transaction.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class SessionState(Protocol):
    """What ``request.session`` holds: a dict of str keys (:class:`microback.security.Session`)."""

    #: Whether the session changed and must be saved.
    modified: bool

    def __getitem__(self, key: str, /) -> Any: ...
    def __setitem__(self, key: str, value: Any, /) -> None: ...
    def __delitem__(self, key: str, /) -> None: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...
    def get(self, key: str, default: Any = None, /) -> Any: ...
    def pop(self, key: str, default: Any = None, /) -> Any: ...
    def setdefault(self, key: str, default: Any = None, /) -> Any: ...
    def update(self, values: Mapping[str, Any] = ..., /, **more: Any) -> None: ...
    def clear(self) -> None: ...
    def keys(self) -> KeysView[str]: ...
    def items(self) -> ItemsView[str, Any]: ...
    def values(self) -> ValuesView[Any]: ...

    def rotate(self) -> None:
        """Replace the session's secrets (on login), keeping its data."""
        ...


class ServingApp(Protocol):
    """What a request knows of the app serving it (:class:`microback.App` is one)."""

    settings: Settings
    extensions: dict[str, Any]
    logger: logging.Logger

    def handler_for(self, endpoint: str) -> Callable[..., Any] | None:
        """The function that handles ``endpoint``, or ``None``."""
        ...

    def url_for(self, endpoint: str, **values: Any) -> str:
        """The URL of ``endpoint`` with ``values`` filled in."""
        ...


class _StrictJSON:
    """The ``json_module`` werkzeug's ``get_json`` calls: our strict loader, stdlib dumps."""

    @staticmethod
    def loads(data: str | bytes) -> Any:
        return json_loads(data, object_hook=JSONObject)

    dumps = staticmethod(json_dumps)


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
        self._source = stream

    def on_exhausted(self) -> None:
        if self._source.read(1):
            raise BodyTooLarge()

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted:  # werkzeug's readall stops here without looking further
            self.on_exhausted()
        return data


def _read_exactly(stream: IO[bytes], length: int) -> bytes:
    """``length`` bytes of ``stream``; ``ClientDisconnected`` (a 400) when it ends first."""
    data = stream.read(length)
    if len(data) == length:
        return data
    parts = [data]
    missing = length - len(data)
    while missing:
        more = stream.read(missing)
        if not more:
            raise ClientDisconnected()
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


class Request(_WerkzeugRequest):
    """The request a handler receives: werkzeug's, with strict JSON and typed parameters.

    ``request.app`` is the app serving it; ``request.endpoint`` and ``request.view_args`` say
    which route matched (``None`` before routing, or when nothing matched).
    ``request.user`` and ``request.session`` are there when the security extensions are used.
    ``request.exception`` is the exception that escaped the handler (or a ``before_request``
    hook), as ``after_request`` hooks see it; ``None`` when the handler returned.
    """

    parameter_storage_class = Params
    json_module = _StrictJSON  # type: ignore[assignment]
    app: ServingApp
    endpoint: str | None = None
    view_args: dict[str, Any] | None = None
    exception: BaseException | None = None
    # Declared, not defined: the security extensions add them as lazy attributes
    # (App.add_request_property), and without them reading one is an AttributeError.
    #: The user the request is made for (``microback.security.Auth``): the app's user model,
    #: or the anonymous user.
    user: Any
    #: The browser session (``microback.security.Sessions`` or ``DatabaseSessions``).
    session: SessionState

    # Narrow werkzeug's types: parameter_storage_class makes these Params.
    args: Params
    form: Params

    def __init__(
        self, environ: WSGIEnvironment, populate_request: bool = True, shallow: bool = False
    ) -> None:
        # werkzeug's constructor, except that what many requests never read (the server
        # address, the mount point, the headers object) is worked out on first use: building
        # them was a sixth of a JSON request. The environ is read with werkzeug's
        # own (private) helpers, through microback/http/_werkzeug.py, so the values are its;
        # tests/test_http.py compares them.
        self.environ = environ
        self.shallow = shallow
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.scheme = environ.get("wsgi.url_scheme", "http")
        self.path = "/" + decode_wsgi_path(environ.get("PATH_INFO") or "").lstrip("/")
        self.query_string = environ.get("QUERY_STRING", "").encode("latin1")
        self.remote_addr = environ.get("REMOTE_ADDR")
        if populate_request and not shallow:
            environ["werkzeug.request"] = self

    @cached_property
    def server(self) -> tuple[str, int | None] | None:
        """The server's address: ``(host, port)``, ``(path, None)`` for a Unix socket."""
        return server_of(self.environ)

    @cached_property
    def root_path(self) -> str:
        """Where the app is mounted (``SCRIPT_NAME``), without a trailing slash."""
        return decode_wsgi_path(self.environ.get("SCRIPT_NAME") or "").rstrip("/")

    @cached_property
    def headers(self) -> EnvironHeaders:  # type: ignore[override]
        """The request's headers, read from the environ."""
        return EnvironHeaders(self.environ)

    @cached_property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        """The request's cookies, parsed by werkzeug from the ``Cookie`` header.

        Read from the environ: werkzeug's walks every header to find that one, which was
        most of the cost of reading a cookie (benchmarks/README.md, issue 19).
        """
        cookies = parse_cookie(self.environ.get("HTTP_COOKIE"), cls=self.dict_storage_class)
        return cast(ImmutableMultiDict[str, str], cookies)

    @cached_property
    def content_length(self) -> int | None:
        """The ``Content-Length`` as an int; ``None`` when absent or the body is chunked.

        Read from the environ, as werkzeug's does through the headers object, which a request
        with a body need not build (a sixth of a small JSON POST: benchmarks/contract.py).
        """
        return get_content_length(self.environ)

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

    @overload
    def get_data(
        self, cache: bool = True, as_text: Literal[False] = False, parse_form_data: bool = False
    ) -> bytes: ...

    @overload
    def get_data(
        self, cache: bool = True, as_text: Literal[True] = ..., parse_form_data: bool = False
    ) -> str: ...

    def get_data(
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> bytes | str:
        """werkzeug's, except that a body of known length nobody has read is read in one call.

        werkzeug reads every body through its limited stream, call by call in Python: a fifth
        of a small JSON POST (benchmarks/contract.py). The answers are the same: a length over
        ``max_content_length`` is werkzeug's 413, a body cut short is ``ClientDisconnected``.
        """
        if cache and not parse_form_data and "stream" not in self.__dict__ and not self.shallow:
            length = self.content_length
            limit = self.max_content_length
            if length is not None and (limit is None or length <= limit):
                cache_body(self, _read_exactly(self.environ["wsgi.input"], length))
                self.stream = io.BytesIO()  # read, as werkzeug's stream is after get_data
        return super().get_data(cache, as_text, parse_form_data)  # type: ignore[call-overload,no-any-return]

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
