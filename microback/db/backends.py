"""From a database URL to a configured peewee database: scheme, driver, pool and options.

``playhouse.db_url`` parses the URL; the scheme picks one of three backends, each a pooled
peewee class whose driver cooperates with gevent under ``microback serve``:

- ``sqlite:///path.db`` (and ``sqlite:///:memory:``): the standard library's sqlite3, with
  WAL, foreign keys and ``synchronous=NORMAL``. Its calls block the loop, but waits for the
  write lock do not (:mod:`microback.db.sqlite`).
- ``postgresql://`` (or ``postgres://``): psycopg 3. It picks its wait function when imported;
  after gevent's ``patch_all()`` that is a cooperative one, with nothing else to install or
  call. (psycopg2 needs psycogreen's wait callback installed by the app, and only ``server``
  and ``cli`` may touch gevent here.)
- ``mysql://`` (or ``mariadb://``): PyMySQL, pure Python, so cooperative in any import order.

Every query runs through :class:`_Translating`, which re-raises the driver errors a client can
act on as HTTP answers (:mod:`microback.db.errors`), and can start a transaction that is
waiting for its first write (the request's, see ``Database``).
"""

from __future__ import annotations

import _socket
import contextlib
import dataclasses
import functools
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import peewee
from playhouse import db_url
from playhouse.pool import PooledMySQLDatabase, PooledPostgresqlDatabase, PooledSqliteDatabase

from ..redact import mask_url
from ._peewee import AtomicBlock, CheckoutCheck, connection_state_is_thread_local, postgresql_idle
from ._pymysql import connection_socket
from .errors import DatabaseConfigError, SchemaNames, translate
from .pool import FairPool
from .sqlite import OneWriterAtATime, is_write
from .timing import request_times

__all__ = ["BACKENDS", "Options", "build", "check_import_order"]

BACKENDS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
_EXAMPLES = "sqlite:///path.db, postgresql://user@host/name or mysql://user@host/name"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_R = TypeVar("_R")
_URL_PARTS = ("database", "user", "password", "passwd", "host", "port")


@dataclasses.dataclass(frozen=True)
class Options:
    """What a :class:`~microback.db.Database` is tuned with; each can also be a URL parameter.

    Values in the URL win over those in code, so ``DATABASE_URL`` can retune a deployment.
    """

    #: Most connections the process holds. PostgreSQL allows 100 by default across all
    #: processes, so 20 leaves room for four workers and a console.
    max_connections: int = 20
    #: How long (s) a request waits for a pooled connection before a 503.
    pool_timeout: float = 5.0
    #: Pooled connections older than this (s) are closed instead of reused (MySQL's
    #: ``wait_timeout`` and proxies drop idle ones).
    stale_timeout: float = 600.0
    #: How long (s) a SQLite writer waits for the write lock before a 503; by default the
    #: pool timeout. The wait yields to other requests (SQLite's own busy timeout is 0).
    busy_timeout: float | None = None
    #: How long (s) connecting may take before the database counts as unreachable.
    connect_timeout: int = 5
    #: The ``Retry-After`` (s) sent with a 503.
    retry_after: int = 1
    #: Run each POST, PUT, PATCH and DELETE request in one transaction, begun at its first
    #: write (``@non_atomic`` opts a route out).
    atomic_requests: bool = True
    #: The URL is a pooler in transaction mode (PgBouncer ``pool_mode = transaction``): each
    #: transaction may run on another server connection, so psycopg prepares no statements
    #: (a statement prepared on one would be missing on the next). PostgreSQL only.
    transaction_pooling: bool = False


_OPTION_RULES: dict[str, tuple[type | tuple[type, ...], float]] = {
    "max_connections": (int, 1),
    "pool_timeout": ((int, float), 0.01),  # peewee's pool reads 0 as "wait forever"
    "stale_timeout": ((int, float), 0),
    "busy_timeout": ((int, float), 0),
    "connect_timeout": (int, 1),
    "retry_after": (int, 0),
    "atomic_requests": (bool, 0),
    "transaction_pooling": (bool, 0),
}


def _problem(url: str, message: str) -> DatabaseConfigError:
    return DatabaseConfigError(f"database URL {mask_url(url)!r}: {message}")


def build(url: str, given: dict[str, Any], schema: SchemaNames) -> tuple[Any, Options]:
    """Create the peewee database for ``url`` with ``given`` options (the URL's query wins).

    Raise :class:`DatabaseConfigError` naming the problem when the URL, an option or the
    driver is unusable. Nothing is connected yet.
    """
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        params = db_url.parseresult_to_dict(parts, unquote_password=True, unquote_user=True)
    except ValueError as exc:
        raise _problem(url, f"not a valid URL ({exc})") from None
    backend = BACKENDS.get(scheme)
    if not scheme:
        raise _problem(url, f"not a database URL (no scheme); use {_EXAMPLES}")
    if backend is None:
        raise _problem(url, f"unknown database type {scheme!r}; use {_EXAMPLES}")
    if backend != "sqlite" and not params.get("database"):
        raise _problem(url, f"no database name; use {scheme}://user@host/name")
    connect = {k: params.pop(k) for k in _URL_PARTS if k in params}
    values: dict[str, Any] = {}
    for source in (given, params):
        for name, value in source.items():
            if name in _OPTION_RULES:
                values[name] = _check_option(url, name, value)
            else:
                connect[name] = value  # anything else is the driver's
    options = Options(**values)
    if options.transaction_pooling and backend != "postgresql":
        raise _problem(url, "option transaction_pooling is for PostgreSQL behind PgBouncer")
    check_import_order()
    if backend == "sqlite":
        database = _sqlite(url, parts.path, options, connect)
    elif backend == "postgresql":
        database = _postgresql(url, options, connect)
    else:
        database = _mysql(url, options, connect)
    database.microback_schema = schema
    database.microback_retry_after = options.retry_after
    database.microback_backend = backend
    database.microback_transaction_pooling = options.transaction_pooling
    return database, options


def _check_option(url: str, name: str, value: Any) -> Any:
    kind, minimum = _OPTION_RULES[name]
    if value is None and getattr(Options, name) is None:
        return value  # "the default", as asdict(options) gives it back
    wrong_type = not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))
    if wrong_type or (kind is not bool and value < minimum):
        if kind is bool:
            expected = "true or false"
        elif kind is int:
            expected = f"a whole number of at least {minimum:g}"
        else:
            expected = f"a number of at least {minimum:g}"
        raise _problem(url, f"option {name} must be {expected}, got {value!r}")
    return value


def _sqlite(url: str, path: str, options: Options, connect: dict[str, Any]) -> Any:
    for key in ("user", "password", "host", "port"):
        if connect.pop(key, None) is not None:
            raise _problem(url, f"SQLite takes no {key}; use sqlite:///path.db")
    name = path[1:] if path.startswith("/") else path
    # busy_timeout first, so that no pragma after it sleeps in C (which would freeze gevent):
    # waits for the lock happen in OneWriterAtATime, cooperatively.
    pragmas: dict[str, Any] = {
        "busy_timeout": 0,
        "foreign_keys": 1,
        "synchronous": "NORMAL",
    }
    connect.pop("database", None)
    if name in ("", ":memory:"):
        # Every new connection to ':memory:' is a new, empty database, so the process shares
        # one connection and never closes it. For tests and quick experiments.
        return _MemorySqliteDatabase(":memory:", pragmas=pragmas, thread_safe=False, **connect)
    directory = Path(name).parent
    if not directory.is_dir():
        raise _problem(url, f"cannot create the SQLite file: no directory {str(directory)!r}")
    # WAL lets readers go on while one writer writes; it is a property of the file.
    pragmas["journal_mode"] = "wal"
    database = _SqliteDatabase(
        name,
        pragmas=pragmas,
        # BEGIN IMMEDIATE takes the write lock up front, where a wait can be retried. A deferred
        # transaction that reads and then writes fails at once with "database is locked" when
        # another writer got in between, and only the whole transaction could be retried.
        lock_type="IMMEDIATE",
        max_connections=options.max_connections,
        timeout=options.pool_timeout,
        stale_timeout=options.stale_timeout,
        # Pooled connections move between threads (greenlets share one); peewee keeps each
        # one used by a single thread at a time.
        check_same_thread=False,
        **connect,
    )
    lock_wait = options.pool_timeout if options.busy_timeout is None else options.busy_timeout
    database.microback_lock_wait = lock_wait
    return database


def _postgresql(url: str, options: Options, connect: dict[str, Any]) -> Any:
    if getattr(peewee, "psycopg", None) is None:
        raise _problem(
            url,
            "PostgreSQL needs the psycopg 3 driver, which is not installed; "
            "pip install 'microback[postgresql]'",
        )
    connect.setdefault("connect_timeout", max(2, options.connect_timeout))
    if options.transaction_pooling:
        connect["prepare_threshold"] = None  # psycopg 3: never prepare
    return _PostgresqlDatabase(
        connect.pop("database"),
        prefer_psycopg3=True,
        max_connections=options.max_connections,
        timeout=options.pool_timeout,
        stale_timeout=options.stale_timeout,
        **connect,
    )


def _mysql(url: str, options: Options, connect: dict[str, Any]) -> Any:
    if getattr(getattr(peewee, "mysql", None), "__name__", "") != "pymysql":
        raise _problem(
            url,
            "MySQL and MariaDB need the PyMySQL driver, which is not installed; "
            "pip install 'microback[mysql]'",
        )
    if "passwd" in connect:  # db_url's spelling, deprecated by PyMySQL (a warning)
        connect["password"] = connect.pop("passwd")
    if connect.get("host", "localhost") in _LOOPBACK and not any(
        key.startswith("ssl") for key in connect
    ):
        # PyMySQL 1.2 tries TLS by default and builds an SSL context on every connect (CPU
        # with the loop blocked; benchmarks/README.md), without verifying the certificate
        # anyway. Loopback traffic never leaves the host.
        connect["ssl_disabled"] = True
    connect.setdefault("connect_timeout", options.connect_timeout)
    return _MySQLDatabase(
        connect.pop("database"),
        max_connections=options.max_connections,
        timeout=options.pool_timeout,
        stale_timeout=options.stale_timeout,
        **connect,
    )


def check_import_order() -> None:
    """Refuse to run when gevent patched the standard library after peewee or psycopg loaded.

    peewee keeps connections in a ``threading.local`` made when it is imported, and psycopg
    picks its wait function then: imported before the patch, every greenlet would share one
    connection and every PostgreSQL query would block the whole process.
    """
    late = []
    if not connection_state_is_thread_local():
        late.append("peewee")
    waiting = sys.modules.get("psycopg.waiting")
    gevent_select = getattr(select.select, "__module__", "").startswith("gevent")
    if waiting is not None and gevent_select and waiting.wait is getattr(waiting, "wait_c", 0):
        late.append("psycopg")
    if late:
        raise DatabaseConfigError(
            f"{' and '.join(late)} {'were' if len(late) > 1 else 'was'} imported before gevent "
            "patched the standard library; "
            "call gevent.monkey.patch_all() before importing microback.db "
            "(microback serve does this for you)"
        )


class _Translating:
    """Re-raise driver errors a client can act on as HTTP answers (see errors.translate).

    Also where a transaction waits for its first write: ``before_first_write(hook)`` makes
    this greenlet's next write statement (or ``atomic()`` block) call ``hook()`` first, once,
    outside any transaction. ``Database`` begins the request's transaction that way, so a
    request holds no lock (SQLite's write lock above all) until it writes.
    """

    microback_schema: SchemaNames
    microback_retry_after: int = 1
    microback_backend: str = ""
    #: What makes each database call a span (``microback.tracing.Tracing``), or ``None``.
    microback_query_spans: Any = None
    microback_transaction_pooling: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first_write = threading.local()  # per greenlet under microback serve

    def before_first_write(self, hook: Callable[[], None] | None) -> Callable[[], None] | None:
        """Set this greenlet's first-write hook (``None`` to cancel); give the previous one."""
        previous: Callable[[], None] | None = getattr(self._first_write, "hook", None)
        self._first_write.hook = hook
        return previous

    def _run_first_write_hook(self) -> None:
        hook = getattr(self._first_write, "hook", None)
        if hook is not None and not self.in_transaction():  # type: ignore[attr-defined]
            self._first_write.hook = None
            hook()

    def atomic(self, *args: Any, **kwargs: Any) -> Any:
        # A block inside the request's transaction is a savepoint of it, as with the
        # transaction begun up front: what the block commits, the request can still undo.
        return _AtomicAfterHook(self, *args, **kwargs)

    def _translating(self, call: Callable[..., _R], *args: Any, sql: str = "") -> _R:
        """Call ``call(*args)``, re-raising a driver error a client can act on as its answer.

        Its time counts as the current request's database time (:mod:`.timing`), less what
        it waited for a pooled connection, which counts as that. A call made inside another
        (the connect of a query's lazy connection) is timed by the outer one only.
        """
        times = request_times
        if times.timing:
            return self._translated(call, args, sql)
        times.timing = True
        waited = times.pool_wait
        started = time.perf_counter()
        try:
            return self._translated(call, args, sql)
        finally:
            times.timing = False
            times.database += time.perf_counter() - started - (times.pool_wait - waited)

    def _translated(self, call: Callable[..., _R], args: tuple[Any, ...], sql: str) -> _R:
        try:
            return call(*args)
        except Exception as exc:
            better = translate(
                exc, self.microback_schema, sql=sql, retry_after=self.microback_retry_after
            )
            if better is None:
                raise
            raise better from exc

    def connect(self, reuse_if_open: bool = False) -> bool:
        return bool(self._translating(super().connect, reuse_if_open))  # type: ignore[misc]

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        if getattr(self._first_write, "hook", None) is not None and is_write(sql):
            self._run_first_write_hook()
        spans = self.microback_query_spans
        if spans is not None:
            with spans.query(sql, self.microback_backend):
                return self._translating(super().execute_sql, sql, params, sql=sql)  # type: ignore[misc]
        return self._translating(super().execute_sql, sql, params, sql=sql)  # type: ignore[misc]

    def begin(self, *args: Any, **kwargs: Any) -> None:
        self._translating(functools.partial(super().begin, *args, **kwargs))  # type: ignore[misc]

    def commit(self) -> None:
        self._traced("COMMIT", super().commit)  # type: ignore[misc]

    def rollback(self) -> None:
        self._traced("ROLLBACK", super().rollback)  # type: ignore[misc]

    def _traced(self, sql: str, call: Callable[[], None]) -> None:
        spans = self.microback_query_spans
        if spans is None:
            self._translating(call)
            return
        with spans.query(sql, self.microback_backend):
            self._translating(call)


class _AtomicAfterHook(AtomicBlock):  # type: ignore[misc]
    def __enter__(self) -> Any:
        self.db._run_first_write_hook()
        return super().__enter__()


class _SqliteDatabase(
    _Translating,
    FairPool,
    OneWriterAtATime,
    PooledSqliteDatabase,  # type: ignore[misc]
):
    pass


class _MemorySqliteDatabase(_Translating, peewee.SqliteDatabase):
    pass


def _server_hung_up(fd: int) -> bool:
    """Tell, without a round trip, whether the server ended an idle connection.

    peewee's pools ask the server (``SELECT 1``, a MySQL ping) each time they hand out a
    connection: a second round trip for a request that makes one query. A server that ends a
    session (a restart, ``pg_terminate_backend``, ``KILL``, an idle timeout) sends an error
    or closes the socket, so bytes or an end-of-file wait there; an idle connection expects
    nothing else. Go's MySQL driver checks connections the same way. The C-level socket is
    used so that gevent's, which would wait for data, is not.
    """
    probe = _socket.socket(fileno=fd)
    try:
        probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        probe.detach()
    return True


def _discard_if_hung_up(conn: Any, fd: int) -> bool:
    """Close *conn* if its server hung up; the pool then drops it without closing it."""
    if not _server_hung_up(fd):
        return False
    with contextlib.suppress(Exception):  # the driver may find the socket already broken
        conn.close()
    return True


class _PostgresqlDatabase(
    _Translating,
    CheckoutCheck,
    FairPool,
    PooledPostgresqlDatabase,  # type: ignore[misc]
):
    def unusable(self, conn: Any) -> bool:
        if conn.closed or not postgresql_idle(self, conn):
            return self.pool_says_unusable(conn)  # peewee rolls back or discards it
        return _discard_if_hung_up(conn, conn.fileno())


class _MySQLDatabase(
    _Translating,
    CheckoutCheck,
    FairPool,
    PooledMySQLDatabase,  # type: ignore[misc]
):
    def unusable(self, conn: Any) -> bool:
        sock = connection_socket(conn)
        if sock is None or not getattr(conn, "open", False):
            return True
        return _discard_if_hung_up(conn, sock.fileno())
