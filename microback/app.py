"""The application: a WSGI callable that routes a request to a handler and answers it.

Everything else plugs in through the hooks defined here (``before_request``,
``after_request``, ``teardown``, ``errorhandler``), so this module imports neither the
database nor security layers nor the server.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
)
from werkzeug.routing import BaseConverter, RequestRedirect
from werkzeug.utils import cached_property
from werkzeug.wrappers import Response as _WerkzeugResponse

from .declared_output import declared_output, with_declared_output
from .hosts import ForwardedHeaders, HostAllowList
from .http import BodyTooLarge, Request, Response, error_response, json_dumps
from .routing import (
    Route,
    Router,
    RouteTable,
    _Entry,
    _handler_name,
    check_handler_signature,
    guards,
    path_converters,
    path_variables,
)
from .security_headers import SecurityHeaders
from .settings import Settings
from .validation import declared_input, with_declared_input

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["App"]

BeforeHook = Callable[[Request], Any]
AfterHook = Callable[[Request, _WerkzeugResponse], "_WerkzeugResponse | None"]
TeardownHook = Callable[[Request, "BaseException | None"], None]
ErrorHandler = Callable[[Request, Any], Any]
_F = TypeVar("_F", bound=Callable[..., Any])

_RETURN_TYPES = "a Response, dict, list, str, bytes, or a (body, status[, headers]) tuple"


class App(Router):
    """A microback application; call it as a WSGI app, or serve it with ``microback serve``.

    Keyword arguments are settings (``debug``, ``secret_key``, ``max_content_length``,
    ``allowed_hosts``, ...: the full list is :class:`~microback.settings.Settings` and
    docs/settings.md); ``MICROBACK_<NAME>`` environment variables override them. A bad
    setting raises :class:`~microback.settings.SettingsError` here, at start-up.
    """

    def __init__(self, **settings: Any) -> None:
        super().__init__()
        self.settings = Settings.load(settings)
        self.logger = logging.getLogger("microback.app")
        #: Per-app state of extensions (the database, auth), keyed by their name.
        self.extensions: dict[str, Any] = {}
        #: What the app signs with its secret key, as given to :meth:`secret_key_for`.
        self.secret_key_uses: list[str] = []
        # A subclass per app carries the body limits, so requests need no per-call setup.
        self.request_class: type[Request] = type(
            "Request",
            (Request,),
            {
                "max_content_length": self.settings.max_content_length,
                "max_form_memory_size": self.settings.max_form_memory_size,
                "max_form_parts": self.settings.max_form_parts,
            },
        )
        self._table = RouteTable()
        self._route_paths: dict[str, str] = {}
        self._hosts = HostAllowList(self.settings.allowed_hosts)
        self._forwarded = (
            ForwardedHeaders(self.settings.trusted_proxies)
            if self.settings.trusted_proxies
            else None
        )
        self._security_headers = SecurityHeaders(self.settings)
        self._before: list[BeforeHook] = []
        self._after: list[AfterHook] = []
        self._teardown: list[TeardownHook] = []
        self._error_handlers: dict[int | type[BaseException], ErrorHandler] = {}
        self._on_startup: list[Callable[[], Any]] = []
        self._on_shutdown: list[Callable[[], Any]] = []

    # --- registration -------------------------------------------------------------------------

    def _add(self, entry: _Entry) -> None:
        super()._add(entry)
        # A declared body is read at registration, once; the table gets the handler that
        # fills it, after the original's signature is checked with it (docs/validation.md).
        # The guards' checks (@login_required...) are taken out to run before the input is
        # read: a request they refuse is never validated (no 422 before the 401).
        declared = declared_input(entry.handler, path_variables(entry.path))
        output = declared_output(entry.handler)
        if declared or output is not None:
            names = [item.name for item in declared]
            check_handler_signature(entry.handler, entry.path, entry.methods, names)
            checks, guarded = guards(entry.handler) if declared else ([], entry.handler)
            handler = with_declared_output(guarded, output)
            handler = with_declared_input(handler, declared, checks, entry.handler)
            entry = entry._replace(handler=handler)
        self._table.add(entry)
        self._route_paths[entry.endpoint] = entry.path

    def add_converter(self, name: str, converter: type[BaseConverter]) -> None:
        """Make ``<name:value>`` usable in paths; register it before the routes that use it."""
        self._table.map.converters[name] = converter

    def add_request_property(self, name: str, loader: Callable[[Request], Any]) -> None:
        """Give this app's requests a lazy attribute: ``request.<name>`` is ``loader(request)``.

        The loader runs on first access and its value is kept for the rest of the request, so
        a request that never reads ``request.session`` never pays for verifying the cookie.
        Extensions use this instead of subclassing the request.
        """
        if hasattr(self.request_class, name):
            raise ValueError(f"requests already have an attribute {name!r}")
        setattr(self.request_class, name, cached_property(loader, name=name))

    def secret_key_for(self, purpose: str) -> str:
        """Give the secret key to sign ``purpose`` with (``"session cookies"``), noting the use.

        Call this once, at set-up, rather than reading ``settings.secret_key``: when no key is
        configured and a random one was made at start-up, ``microback serve`` then warns that
        what the app signs will not survive a restart. An app that signs nothing is not warned.
        """
        if purpose not in self.secret_key_uses:
            self.secret_key_uses.append(purpose)
        return self.settings.secret_key

    def secret_keys_for(self, purpose: str) -> list[str]:
        """Give the keys that verify ``purpose``: the secret key first (it signs), then the
        ``previous_secret_keys`` of a rotation. Noted like :meth:`secret_key_for`."""
        return [self.secret_key_for(purpose), *self.settings.previous_secret_keys]

    def before_request(self, hook: _F) -> _F:
        """Call ``hook(request)`` before each handler; a value it returns is the response."""
        self._before.append(hook)
        return hook

    def after_request(self, hook: _F) -> _F:
        """Call ``hook(request, response)`` on every response, errors included.

        The hook may change the response in place (return ``None``) or return another one.
        """
        self._after.append(hook)
        return hook

    def teardown(self, hook: _F) -> _F:
        """Call ``hook(request, error)`` at the end of every request, even when it failed.

        ``error`` is the exception that escaped the handler, or ``None``. A hook that raises
        is logged and does not stop the others.
        """
        self._teardown.append(hook)
        return hook

    def errorhandler(self, code_or_exception: int | type[BaseException]) -> Callable[[_F], _F]:
        """Answer an HTTP status or an exception class with ``handler(request, error)``.

        A handler for 500 also receives unexpected exceptions, wrapped in werkzeug's
        ``InternalServerError`` (the original is its ``original_exception``).
        """
        if isinstance(code_or_exception, int) and not 400 <= code_or_exception <= 599:
            raise ValueError(
                f"errorhandler() takes a status from 400 to 599, got {code_or_exception}"
            )

        def decorator(handler: _F) -> _F:
            self._error_handlers[code_or_exception] = handler
            return handler

        return decorator

    def on_startup(self, hook: _F) -> _F:
        """Call ``hook()`` once in each serving process, before it accepts a connection.

        For what must not be shared across a fork: opening clients, warming caches. With
        ``--workers`` it runs in every worker (and again in each new one after a reload); a
        hook that raises stops that process from serving, with the error as the reason.
        """
        self._on_startup.append(hook)
        return hook

    def on_shutdown(self, hook: _F) -> _F:
        """Call ``hook()`` once in each serving process after its graceful stop ends.

        Hooks run in the reverse order of registration; one that raises is logged and does
        not stop the others.
        """
        self._on_shutdown.append(hook)
        return hook

    def startup(self) -> None:
        """Run the :meth:`on_startup` hooks (``microback serve`` calls this in each process)."""
        for hook in self._on_startup:
            hook()

    def shutdown(self) -> None:
        """Run the :meth:`on_shutdown` hooks, last registered first."""
        for hook in reversed(self._on_shutdown):
            try:
                hook()
            except Exception:
                self.logger.exception("shutdown hook %s failed", _handler_name(hook))

    # --- introspection ------------------------------------------------------------------------

    @property
    def routes(self) -> list[Route]:
        """The route table: methods, path and endpoint of every route."""
        return self._table.routes()

    def url_for(self, endpoint: str, **values: Any) -> str:
        """Build the path of ``endpoint``; values that are not part of the path become the query.

        Raises werkzeug's ``BuildError`` (which names the endpoint and what is missing).
        """
        return self._table.build(endpoint, values)

    def handler_for(self, endpoint: str) -> Callable[..., Any] | None:
        """Give the handler registered for ``endpoint``, or ``None``.

        Extensions read marks that decorators leave on handlers (``@csrf_exempt``) this way.
        """
        return self._table.handlers.get(endpoint)

    def path_converters(self, path: str) -> list[tuple[str, BaseConverter]]:
        """Give the name and converter of each variable of a route ``path`` (for its schema)."""
        return path_converters(self._table.map, path)

    # --- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request. Wrap this, not the app, with WSGI middleware::

        app.wsgi_app = SomeMiddleware(app.wsgi_app)
        """
        if self._forwarded is not None:
            self._forwarded.apply(environ)
        request = self.request_class(environ)
        request.app = self
        error: BaseException | None = None
        try:
            response = self._dispatch(request)
        except Exception as exc:
            error = request.exception = exc
            try:
                response = self._response_for_exception(request, exc)
            except Exception as handler_error:  # an error handler that failed
                response = self._internal_error(request, handler_error)
        try:
            for hook in self._after:
                response = hook(request, response) or response
        except Exception as exc:
            error = error or exc
            response = self._internal_error(request, exc)
        start = self._security_headers.wrap(start_response, secure=request.is_secure)
        try:
            return response(environ, start)
        finally:
            self._run_teardown(request, error)
            # Break the reference cycles a request would leave for the garbage collector:
            # werkzeug keeps the request in the environ, which the request holds (Flask breaks
            # it the same way when a request ends), and an HTTP error's traceback holds the
            # frames that hold the request (26 objects for every 404). The traceback of an
            # HTTP error explains nothing once it is answered; any other error keeps its own.
            environ["werkzeug.request"] = None
            if isinstance(error, HTTPException):
                error.__traceback__ = None

    def _dispatch(self, request: Request) -> _WerkzeugResponse:
        refusal = self._hosts.refusal(request.environ)
        if refusal is not None:
            raise BadRequest(refusal)
        routing_error: HTTPException | None = None
        options_for: list[str] | None = None
        try:
            match = self._table.match(request.environ, request.path, request.method)
            request.endpoint, request.view_args = match.endpoint, match.values
            # The route's template, never the raw path: for logs, warnings and metrics.
            request.environ["microback.route"] = self._route_paths[match.endpoint]
        except MethodNotAllowed as exc:
            if request.method == "OPTIONS":
                options_for = list(exc.valid_methods or [])
            else:
                routing_error = self._method_not_allowed(request, exc.valid_methods or [])
        except NotFound:
            routing_error = NotFound(f"nothing here: no route matches {request.path}")
        except RequestRedirect as exc:
            routing_error = exc

        for hook in self._before:
            early = hook(request)
            if early is not None:
                return self.make_response(early, hook)
        if routing_error is not None:
            raise routing_error
        if options_for is not None:
            return self._options_response(options_for)
        if request.environ.get("CONTENT_LENGTH"):  # most requests have no body to check
            self._check_body_size(request)
        return self.make_response(match.handler(request, **match.values), match.handler)

    def _check_body_size(self, request: Request) -> None:
        # Without a Content-Length (chunked), the request's stream enforces the limit.
        length, limit = request.content_length, self.settings.max_content_length
        if length is not None and length > limit:
            raise RequestEntityTooLarge(
                f"the request body is {length} bytes; the limit is "
                f"{self.settings.describe('max_content_length')} (setting max_content_length)"
            )

    @staticmethod
    def _options_response(allowed: Iterable[str]) -> Response:
        methods = sorted({*allowed, "OPTIONS"})
        return Response(b"", 200, [("Allow", ", ".join(methods))])

    @staticmethod
    def _method_not_allowed(request: Request, allowed: Iterable[str]) -> MethodNotAllowed:
        methods = sorted({*allowed, "OPTIONS"})
        return MethodNotAllowed(
            methods,
            f"{request.method} is not allowed for {request.path}; allowed: {', '.join(methods)}",
        )

    # --- responses ----------------------------------------------------------------------------

    def make_response(
        self, value: Any, source: Callable[..., Any], status: int = 200
    ) -> _WerkzeugResponse:
        """Turn what a handler returned into a response; ``source`` is named in a TypeError.

        ``status`` applies when the value does not give one (an error handler's default is
        the error's own status, so forgetting it cannot turn an error into a 200).
        """
        if isinstance(value, _WerkzeugResponse):
            return value
        if isinstance(value, tuple):
            return self._response_from_tuple(value, source, status)
        if isinstance(value, dict | list):
            return Response.buffered(json_dumps(value).encode(), status, "application/json")
        if isinstance(value, str):
            return Response.buffered(value.encode(), status, "text/html; charset=utf-8")
        if isinstance(value, bytes | bytearray | memoryview):
            return Response.buffered(bytes(value), status, "application/octet-stream")
        raise TypeError(
            f"handler {_handler_name(source)} returned {type(value).__name__}; "
            f"return {_RETURN_TYPES}"
        )

    def _response_from_tuple(
        self, value: tuple[Any, ...], source: Callable[..., Any], default_status: int
    ) -> _WerkzeugResponse:
        status: Any = None
        headers: Any = None
        if len(value) == 3:
            body, status, headers = value
        elif len(value) == 2:
            body, second = value
            if isinstance(second, Mapping | list):
                headers = second
            else:
                status = second
        else:
            raise TypeError(
                f"handler {_handler_name(source)} returned a tuple of {len(value)} items; "
                "return (body, status) or (body, status, headers)"
            )
        if isinstance(body, tuple):
            raise TypeError(f"handler {_handler_name(source)} returned a nested tuple")
        response = self.make_response(body, source, default_status)
        if status is not None:
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise TypeError(
                    f"handler {_handler_name(source)} returned status {status!r}; "
                    "use an int from 100 to 599, such as 201"
                )
            response.status_code = status
            if status in (204, 304):
                # These statuses carry no body, so no Content-Type (RFC 9110 §15.3.5, §15.4.5).
                response.set_data(b"")
                del response.headers["Content-Type"]
        if headers is not None:
            response.headers.update(headers)
        return response

    # --- errors -------------------------------------------------------------------------------

    def _find_error_handler(self, error: BaseException) -> ErrorHandler | None:
        if isinstance(error, HTTPException) and error.code in self._error_handlers:
            return self._error_handlers[error.code]
        for cls in type(error).__mro__:
            if cls in self._error_handlers:
                return self._error_handlers[cls]
        return None

    def _response_for_exception(self, request: Request, error: Exception) -> _WerkzeugResponse:
        if not isinstance(error, HTTPException):
            handler = self._find_error_handler(error)
            if handler is None:
                return self._internal_error(request, error)
            return self.make_response(handler(request, error), handler, 500)
        if isinstance(error, RequestRedirect):
            return error.get_response(request.environ)
        if isinstance(error, BodyTooLarge):
            error.description = (
                "the request body (sent without Content-Length) is larger than the limit of "
                f"{self.settings.describe('max_content_length')} (setting max_content_length)"
            )
        elif isinstance(error, RequestEntityTooLarge) and (
            error.description == RequestEntityTooLarge.description
        ):
            # Raised by werkzeug while parsing a form past its limits.
            error.description = (
                "the request body is too large; the limits are "
                f"{self.settings.describe('max_content_length')} for the body, "
                f"{self.settings.describe('max_form_memory_size')} for a form field and "
                f"{self.settings.max_form_parts} form parts"
            )
        handler = self._find_error_handler(error)
        if handler is not None:
            return self.make_response(handler(request, error), handler, error.code or 500)
        return error_response(request, error)

    def _internal_error(self, request: Request, error: BaseException) -> _WerkzeugResponse:
        # The path only: a query string may carry tokens, and logs outlive requests.
        self.logger.error(
            "unhandled exception in %s %s", request.method, request.path, exc_info=error
        )
        request_id = request.environ.get("microback.request_id")
        wrapped = InternalServerError(
            # The id the server gave the request (also in X-Request-ID and the log): a user
            # who quotes it lets the operator find this error's traceback.
            f"{InternalServerError.description} Quote request id {request_id} when you report it."
            if request_id
            else None,
            original_exception=error,
        )
        handler = self._error_handlers.get(500) or self._error_handlers.get(InternalServerError)
        if handler is not None:
            try:
                return self.make_response(handler(request, wrapped), handler, 500)
            except Exception as handler_error:
                self.logger.error("the 500 error handler itself failed", exc_info=handler_error)
        detail = "".join(traceback.format_exception(error)) if self.settings.debug else None
        return error_response(request, wrapped, detail=detail)

    def _run_teardown(self, request: Request, error: BaseException | None) -> None:
        for hook in self._teardown:
            try:
                hook(request, error)
            except Exception as exc:
                self.logger.error("teardown hook %s failed", _handler_name(hook), exc_info=exc)
        if "files" in request.__dict__:  # only uploaded files need closing (a cached_property)
            request.close()
