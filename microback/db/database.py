"""``Database``: one database for an app, its models, and a connection per request.

It plugs into the app through hooks only: ``before_request`` arms the transaction of an
unsafe request (``atomic_requests``, on by default), ``after_request`` commits or rolls it
back, ``teardown`` returns the connection to the pool. A request that never queries never
takes a connection: peewee connects lazily on the first query.

The request's transaction begins at its first write, not when the request arrives: by then
the body has been read (it is read first if not), and reads and slow work before the first
write (a bcrypt check) hold no lock. On SQLite, whose write lock is one per database, that
is the difference between one slow client and a stalled site.

Connections are per thread, and so per greenlet under ``microback serve`` (gevent patches
``threading.local`` before peewee is imported).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import peewee
from werkzeug.exceptions import HTTPException

from ..http import SAFE_METHODS, error_response
from ..redact import mask_url
from .backends import Options, build
from .errors import (
    ConstraintViolation,
    DatabaseConfigError,
    DatabaseUnavailable,
    DatabaseUnreachableError,
    InvalidValue,
    SchemaNames,
    answer,
    first_line,
    original,
)
from .models import Model as BaseModel
from .sqlite import not_writable
from .timing import request_times

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as WerkzeugResponse

    from ..app import App
    from ..http import Request

__all__ = ["Atomic", "Database", "non_atomic"]

logger = logging.getLogger("microback.db")

ENV_VARIABLE = "DATABASE_URL"
_TRANSACTION = "microback.db.transaction"
_NON_ATOMIC = "microback_non_atomic"
_BEFORE_COMMIT = "microback.db.before_commit"
_F = TypeVar("_F", bound=Callable[..., Any])


def non_atomic(handler: _F) -> _F:
    """Run this route's unsafe requests without the request transaction.

    For streaming uploads and long work: each statement then commits on its own, and
    ``with db.atomic():`` makes the transactions the handler needs. Put it under the
    route decorator, or anywhere among decorators that use ``functools.wraps``.
    """
    setattr(handler, _NON_ATOMIC, True)
    return handler


class Atomic(Protocol):
    """What :meth:`Database.atomic` returns: a context manager that is also a decorator."""

    def __enter__(self) -> Any: ...
    def __exit__(self, *exc_info: Any) -> Any: ...
    def __call__(self, fn: _F) -> _F: ...


class _RequestFailed(Exception):
    """Passed to a transaction's ``__exit__`` to make it roll back."""


class Database:
    """The app's database: ``Database(app, "sqlite:///notes.db", **options)``.

    The ``DATABASE_URL`` environment variable, when set, replaces the URL given here, so one
    code base runs on SQLite in development and PostgreSQL in production. URLs:
    ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:``,
    ``postgresql://user:password@host:5432/name``, ``mysql://user:password@host/name``.
    Options (see :class:`~microback.db.backends.Options`) may be keyword arguments or URL
    parameters (``?max_connections=50``); anything else is passed to the driver.

    A URL, option or driver that cannot work raises :class:`DatabaseConfigError` here; with an
    app, a database that cannot be reached raises :class:`DatabaseUnreachableError` here too,
    so a misconfigured deployment stops at start-up with one line saying why.
    """

    def __init__(self, app: App | None = None, url: str | None = None, **options: Any) -> None:
        self._models: list[type[BaseModel]] = []
        self._proxy = peewee.DatabaseProxy()
        self._url: str | None = None
        self.options = Options()
        self._attached = False  # to an app; then atomic_requests is fixed (see init_app)
        self._query_spans: Any = None
        self.Model: type[BaseModel] = type(
            "Model",
            (BaseModel,),
            {
                "__module__": __name__,
                "__qualname__": "Database.Model",
                "__microback_models__": self._models,
                "Meta": type("Meta", (), {"database": self._proxy}),
            },
        )
        url = os.environ.get(ENV_VARIABLE) or url
        if url:
            self.configure(url, **options)
        elif options:
            raise DatabaseConfigError(
                f"options given without a database URL: {', '.join(options)}"
            )
        if app is not None:
            self.init_app(app)

    # --- configuration ----------------------------------------------------------------------

    def configure(self, url: str, **options: Any) -> None:
        """Point this Database (and every model on it) at ``url``, closing current connections.

        Used at construction; tests use it to move an app onto a fresh database. Unlike the
        constructor it takes ``url`` as given, without looking at ``DATABASE_URL``.
        """
        if not isinstance(url, str) or not url:
            raise DatabaseConfigError(f"the database URL must be a non-empty string, got {url!r}")
        database, parsed = build(url, options, SchemaNames(self._models))
        if self._attached and parsed.atomic_requests != self.options.atomic_requests:
            raise DatabaseConfigError(
                "atomic_requests cannot change once the Database is attached to an app; "
                "give it to Database(app, url, atomic_requests=...) or in the URL"
            )
        self.close_all()
        database.microback_query_spans = self._query_spans
        self._proxy.initialize(database)
        self._url, self.options = url, parsed

    def init_app(self, app: App) -> None:
        """Plug into ``app``: hooks, error answers, ``app.extensions["db"]``; check the database.

        Raises :class:`DatabaseUnreachableError` when the database cannot be reached.
        """
        if self._url is None:
            raise DatabaseConfigError(
                f"no database URL: pass one to Database(app, url) or set {ENV_VARIABLE}"
            )
        self.check()
        app.extensions["db"] = self
        tracing = app.extensions.get("tracing")
        if tracing is not None:  # enable_tracing(app) came first
            self.trace_queries(tracing)
        # The transaction hooks only where there are transactions to run: two calls on every
        # request were a tenth of a small one's cost in the framework.
        if self.options.atomic_requests:
            app.before_request(self._begin_request)
            app.after_request(self._end_transaction)
        app.teardown(self._teardown)
        self._attached = True
        app.errorhandler(ConstraintViolation)(answer)
        app.errorhandler(DatabaseUnavailable)(answer)
        app.errorhandler(InvalidValue)(answer)

    def trace_queries(self, spans: Any) -> None:
        """Make each database call a span of *spans* (``enable_tracing`` calls this)."""
        self._query_spans = spans
        if self._proxy.obj is not None:
            self._proxy.obj.microback_query_spans = spans

    def check(self) -> None:
        """Connect once and disconnect; raise :class:`DatabaseUnreachableError` if that fails.

        A SQLite file that cannot take writes is a warning: a read-only replica is fine.

        The connection is closed, not pooled: a server that forks workers after importing the
        app must not share a socket between processes.
        """
        database = self.database
        problems = []
        if self.backend == "sqlite" and not self.shared_connection:
            problems = not_writable(database.database)
            for problem in problems:
                logger.warning("%s: writes will be answered 503 until that is fixed", problem)
        try:
            opened = database.connect(reuse_if_open=True)
        except (peewee.DatabaseError, peewee.InterfaceError) as exc:
            raise DatabaseUnreachableError(
                f"cannot connect to the database at {self.display_url}: "
                f"{self._masked(first_line(original(exc)))}"
                + "".join(f"; {problem}" for problem in problems)
            ) from None
        if opened and not self.shared_connection:
            if hasattr(database, "manual_close"):
                database.manual_close()
            else:
                database.close()

    def _masked(self, text: str) -> str:
        password = getattr(self.database, "connect_params", {}).get("password")
        return text.replace(password, "***") if password else text

    # --- what the app and the models see ----------------------------------------------------

    @property
    def database(self) -> Any:
        """The peewee database (a pooled one for files and servers)."""
        if self._proxy.obj is None:
            raise DatabaseConfigError(
                f"no database URL: pass one to Database(app, url) or set {ENV_VARIABLE}"
            )
        return self._proxy.obj

    @property
    def backend(self) -> str:
        """``"sqlite"``, ``"postgresql"`` or ``"mysql"`` (MariaDB included)."""
        return str(self.database.microback_backend)

    @property
    def url(self) -> str | None:
        """The URL in use, password included; show :attr:`display_url` instead."""
        return self._url

    @property
    def display_url(self) -> str:
        """The URL in use with the password masked, for logs and messages."""
        return mask_url(self._url) if self._url else "(not configured)"

    @property
    def models(self) -> list[type[BaseModel]]:
        """The model classes defined on ``db.Model``, in definition order."""
        return list(self._models)

    @property
    def shared_connection(self) -> bool:
        """True for ``sqlite:///:memory:``: one connection, shared, never closed."""
        return not self.database.thread_safe

    def atomic(self, **options: Any) -> Atomic:
        """Run a block (``with db.atomic():``) or function (``@db.atomic()``) in a transaction.

        Committed when it ends normally, rolled back when it raises. Nested, or inside the
        request's transaction, it becomes a savepoint. On SQLite the transaction takes the
        write lock at once (``BEGIN IMMEDIATE``), waiting for another writer without blocking
        other requests, for at most ``busy_timeout`` (the pool timeout by default).
        """
        return cast(Atomic, self.database.atomic(**options))

    @contextlib.contextmanager
    def independent(self) -> Iterator[None]:
        """Run a block outside the request's transaction: what it writes stays, whatever the
        request's outcome.

        For writes that must stand when the request fails: the count of a failed log-in,
        an audit line. Each statement commits on its own (``with db.atomic():`` inside makes
        a transaction of the block's own). It uses the request's connection, so it must run
        before the request's transaction has begun (before the handler's first write): one
        connection holds one transaction, and a second connection could wait for ever on a
        full pool. Raises ``RuntimeError`` inside a transaction.
        """
        database = self.database
        if database.in_transaction():
            raise RuntimeError(
                "db.independent() cannot run inside a transaction; call it before the "
                "request's first write, or mark the route @non_atomic"
            )
        armed = database.before_first_write(None)
        try:
            yield
        finally:
            database.before_first_write(armed)

    def release(self) -> None:
        """Give this request's connection back to the pool until its next query.

        Call it before slow work that needs no database (hashing a password, calling
        another service), so other requests can use the connection meanwhile. It does
        nothing inside a transaction, which needs its connection to the end.
        """
        database = self._proxy.obj
        if database is None or self.shared_connection or database.is_closed():
            return
        if not database.in_transaction():
            database.close()

    def request_is_atomic(self, request: Request) -> bool:
        """Whether ``request``'s writes run in the request transaction, committed together
        at the end: an unsafe method on a route not marked ``@non_atomic``, with
        ``atomic_requests`` on. Otherwise each statement commits as it is made.
        """
        return (
            self.options.atomic_requests
            and request.method not in SAFE_METHODS
            and request.endpoint is not None
            and not getattr(request.app.handler_for(request.endpoint), _NON_ATOMIC, False)
        )

    def before_commit(
        self, request: Request, callback: Callable[[WerkzeugResponse], None]
    ) -> None:
        """Call ``callback(response)`` in the request's transaction, just before its commit.

        For writes that must commit together with the handler's, or not at all, and that
        depend on its answer (the stored answer of an ``Idempotency-Key``). It is not called
        when the request fails (it raised, or answered 5xx), nor when the request has no
        transaction (a safe method, ``@non_atomic``, ``atomic_requests=False``): check
        :attr:`Request.exception` and the answer in an ``after_request`` hook for those. An
        ``HTTPException`` it raises becomes the answer, and the transaction is rolled back.
        """
        request.environ.setdefault(_BEFORE_COMMIT, []).append(callback)

    def create_tables(
        self, models: Iterable[type[peewee.Model]] | None = None, safe: bool = True
    ) -> None:
        """Create the tables of ``models`` (default: all of :attr:`models`) and their indexes.

        With ``safe`` (the default), existing tables are left alone. For quick starts and
        tests; a deployed schema changes through migrations.
        """
        with self._connected() as database:
            database.create_tables(list(self._models if models is None else models), safe=safe)

    def drop_tables(
        self, models: Iterable[type[peewee.Model]] | None = None, safe: bool = True
    ) -> None:
        """Drop the tables of ``models`` (default: all of :attr:`models`)."""
        with self._connected() as database:
            database.drop_tables(list(self._models if models is None else models), safe=safe)

    @contextlib.contextmanager
    def _connected(self) -> Iterator[Any]:
        # Unlike peewee's connection_context(), leave a connection that was already open (a
        # request's, or the shared ':memory:' one) open.
        database = self.database
        opened = database.connect(reuse_if_open=True)
        try:
            yield database
        finally:
            if opened and not self.shared_connection:
                database.close()

    def close_all(self) -> None:
        """Close every connection this process holds (at shutdown, or at the end of a test)."""
        database = self._proxy.obj
        if database is None:
            return
        if hasattr(database, "close_all"):
            database.close_all()
        elif not database.is_closed():
            database.close()

    # --- the request hooks ------------------------------------------------------------------

    def _begin_request(self, request: Request) -> None:
        if self.request_is_atomic(request):
            self.database.before_first_write(lambda: self._begin_transaction(request))

    def _begin_transaction(self, request: Request) -> None:
        # The body first: a client that sends it slowly must not hold the lock meanwhile.
        # get_data() keeps it for the handler (and for form parsing). Not when the handler
        # has already read it, or reads the stream itself: taking the rest would leave it
        # nothing to read (such a route should be @non_atomic).
        if not {"form", "stream"} & request.__dict__.keys():
            request.get_data(cache=True)
        transaction = self.database.atomic()
        transaction.__enter__()
        request.environ[_TRANSACTION] = transaction

    def _end_transaction(
        self, request: Request, response: WerkzeugResponse
    ) -> WerkzeugResponse | None:
        # Here, not at teardown: a failed COMMIT must still be able to change the status.
        callbacks = request.environ.pop(_BEFORE_COMMIT, ())
        replaced = None
        if callbacks and request.exception is None and response.status_code < 500:
            try:
                for callback in callbacks:  # while a first write still opens the transaction
                    callback(response)
            except HTTPException as exc:
                request.exception = exc
                replaced = error_response(request, exc)
        self.database.before_first_write(None)  # what after_request hooks write commits alone
        transaction = request.environ.pop(_TRANSACTION, None)
        if transaction is None:
            return replaced
        if request.exception is not None or response.status_code >= 500:
            _roll_back(transaction)
            return replaced
        try:
            transaction.__exit__(None, None, None)
        except (ConstraintViolation, DatabaseUnavailable) as exc:
            return answer(request, exc)
        return None

    def _teardown(self, request: Request, error: BaseException | None) -> None:
        # The request's database and pool-wait seconds, for the server's slow-request line
        # (environ keys documented in microback.server.slow).
        environ = request.environ
        environ["microback.db_seconds"], environ["microback.pool_wait_seconds"] = (
            request_times.take()
        )
        database = self._proxy.obj
        if database is None:
            return
        database.before_first_write(None)
        transaction = request.environ.pop(_TRANSACTION, None)
        if transaction is not None:  # an after_request hook failed before ours ran
            _roll_back(transaction)
        if database.is_closed():
            return  # the request never connected (a route without queries): nothing to end
        if database.in_transaction():
            logger.error(
                "%s %s left a transaction open; rolling it back (use 'with db.atomic():')",
                request.method,
                request.path,
            )
            _abandon_transactions(database)
        if not self.shared_connection and not database.is_closed():
            database.close()


def _roll_back(transaction: Any) -> None:
    try:
        transaction.__exit__(_RequestFailed, _RequestFailed(), None)
    except Exception as exc:
        # The connection is likely gone; the pool discards it when it is returned.
        logger.warning("rollback failed: %s", first_line(original(exc)))


def _abandon_transactions(database: Any) -> None:
    try:
        database.rollback()
    except Exception as exc:
        logger.warning("rollback failed: %s", first_line(original(exc)))
    while database.transaction_depth():
        database.pop_transaction()
