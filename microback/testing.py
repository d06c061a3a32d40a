"""Test helpers: a webtest client that checks the app against the WSGI spec, and databases.

Importing this module needs the ``test`` extra (webtest, pytest, and the database drivers);
the runtime package does not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit
from wsgiref.validate import validator

import pytest
import webtest
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    import peewee

    from .db import Database
    from .jobs import Enqueued, JobFunction, Jobs

__all__ = [
    "TestClient",
    "TestDatabases",
    "database_servers",
    "database_url",
    "enqueued_jobs",
    "fresh_database",
    "run_jobs",
    "selected_backends",
]


#: An environ key naming the WSGI app that answers this one request instead of the app tested.
_ONE_OFF_APP = "microback.testing.one_off_app"


class TestClient(webtest.TestApp):  # type: ignore[misc]
    """A webtest ``TestApp`` for a WSGI app, checked by ``wsgiref.validate`` on every call.

    ``client.get("/notes").json`` is the decoded body; a 4xx or 5xx answer raises unless the
    call says ``status=404`` (or ``expect_errors=True``). Pass ``validate=False`` to skip the
    PEP 3333 checks (for an app wrapped in middleware that breaks them on purpose).
    Requests come from ``127.0.0.1``, as from a real server's loopback client, unless the
    request or ``extra_environ`` gives another ``REMOTE_ADDR``.

    ``client.log_in(user)`` logs a user in without the login form (see :meth:`log_in`).
    """

    __test__ = False  # not a test class, despite the name

    def __init__(self, app: Any, *, validate: bool = True, **options: Any) -> None:
        self.microback_app = app
        self._checked_app = validator(app) if validate else app
        # webtest calls _dispatch, which is the checked app unless a request names another
        # (log_in's), so nothing here ever replaces webtest's own attribute.
        super().__init__(self._dispatch, **options)

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Any:
        app = environ.pop(_ONE_OFF_APP, None) or self._checked_app
        return app(environ, start_response)

    def log_in(self, user: Any) -> None:
        """Log ``user`` in for this client's next requests, as ``auth.login`` in a handler does.

        A test of what a logged-in user sees should not go through the login form each time:
        the form needs a CSRF token, a password and a bcrypt check (~50 ms even at the lowest
        cost). This makes the session the app's ``Auth`` makes at login, with the app's own
        session store (signed cookie or database), and puts its cookie in this client's jar.
        The session is a new one, so fetch a page for a CSRF token after this.
        """
        app = self.microback_app
        auth, store = app.extensions.get("auth"), app.extensions.get("sessions")
        if auth is None or store is None:
            raise LookupError("log_in needs an app with microback.security.Auth set up")

        def log_in_app(environ: dict[str, Any], start_response: Any) -> Any:
            request = app.request_class(environ)
            request.app = app
            auth.login(request, user)
            response = Response()
            store.save(request, response)
            return response(environ, start_response)

        # One request through webtest, to this app instead of the real one, so the cookie jar
        # takes the session cookie exactly as it takes the app's own.
        self.get("/", extra_environ={_ONE_OFF_APP: log_in_app})

    def do_request(self, req: Any, *args: Any, **kwargs: Any) -> Any:
        # A server always knows its peer; without one, limits per address are not applied.
        req.environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        return super().do_request(req, *args, **kwargs)


# --- databases --------------------------------------------------------------------------------
#
# Tests run on SQLite always, and on PostgreSQL and MariaDB/MySQL when MICROBACK_TEST_DATABASES
# names them ("sqlite,postgresql,mysql"). Each run creates its own uniquely named database on
# each server and drops it at the end; each test starts with no tables.
#
# The fixtures are plain pytest fixtures; bring them into a conftest.py with
# ``from microback.testing import database_url, database_servers``.

TEST_DATABASES_VARIABLE = "MICROBACK_TEST_DATABASES"
#: Where the servers are, unless MICROBACK_TEST_POSTGRESQL_URL / MICROBACK_TEST_MYSQL_URL say.
SERVER_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mysql": "mysql://root@127.0.0.1:3306/mysql",
}
BACKENDS = ("sqlite", "postgresql", "mysql")


def selected_backends(environ: Mapping[str, str] | None = None) -> list[str]:
    """The backends named in ``MICROBACK_TEST_DATABASES`` (default: SQLite only)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(TEST_DATABASES_VARIABLE, "") or "sqlite"
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    names = ["postgresql" if n == "postgres" else "mysql" if n == "mariadb" else n for n in names]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise ValueError(
            f"{TEST_DATABASES_VARIABLE}={raw!r}: unknown {unknown[0]!r}; "
            f"use a comma-separated list of {', '.join(BACKENDS)}"
        )
    return list(dict.fromkeys(names))


def server_url(backend: str) -> str:
    """The URL of an existing database on the ``backend`` server, used to create test ones."""
    variable = f"MICROBACK_TEST_{backend.upper()}_URL"
    return os.environ.get(variable) or SERVER_URLS[backend]


class TestDatabases:
    """The databases this test run made on each server; ``url(backend)`` makes one on demand.

    A server that cannot be reached skips the test, except when ``CI`` is true: CI must not
    pass while quietly running nothing on PostgreSQL or MariaDB.
    """

    __test__ = False

    def __init__(self) -> None:
        self.name = f"microback_test_{os.getpid()}_{secrets.token_hex(3)}"
        self._urls: dict[str, str] = {}
        self._admin: dict[str, Any] = {}  # a connection to each test database, for resets

    def url(self, backend: str) -> str:
        """The URL of this run's database on ``backend``, created on first use."""
        if backend == "sqlite":
            raise ValueError("SQLite test databases are files; use the database_url fixture")
        if backend not in self._urls:
            try:
                self._urls[backend] = self._create(backend)
            except Exception as exc:
                problem = f"{backend} at {server_url(backend)} is unavailable: {exc}"
                if os.environ.get("CI", "").lower() == "true":
                    pytest.fail(f"CI=true and {problem}", pytrace=False)
                pytest.skip(problem)
        return self._urls[backend]

    def _create(self, backend: str) -> str:
        # The server URL's query holds Database options (?transaction_pooling=true behind
        # PgBouncer): kept on the test database's URL, not given to the driver's own connections.
        parts = urlsplit(server_url(backend))
        url = urlunsplit(parts._replace(path="/" + self.name))
        if backend == "postgresql":
            with _psycopg_connect(server_url(backend)) as admin:
                admin.execute(f'CREATE DATABASE "{self.name}"')
            self._admin[backend] = _psycopg_connect(url)
        else:
            admin = _pymysql_connect(server_url(backend))
            try:
                admin.cursor().execute(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4")
            finally:
                admin.close()
            self._admin[backend] = _pymysql_connect(url)
        return url

    def admin(self, backend: str) -> Any:
        """A driver connection (autocommit) to this run's database, to act as its administrator."""
        self.url(backend)
        return self._admin[backend]

    def reset(self, backend: str) -> None:
        """Drop every table of this run's database on ``backend``."""
        admin = self._admin.get(backend)
        if admin is None:
            return
        if backend == "postgresql":
            admin.execute("DROP SCHEMA public CASCADE")
            admin.execute("CREATE SCHEMA public")
            return
        cursor = admin.cursor()
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (self.name,),
        )
        tables = [row[0] for row in cursor.fetchall()]
        if tables:
            cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
            cursor.execute("DROP TABLE " + ", ".join(f"`{t}`" for t in tables))
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")

    def close(self) -> None:
        """Drop the databases this run created."""
        for backend, admin in self._admin.items():
            admin.close()
            if backend == "postgresql":
                with _psycopg_connect(server_url(backend)) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            else:
                conn = _pymysql_connect(server_url(backend))
                try:
                    conn.cursor().execute(f"DROP DATABASE IF EXISTS `{self.name}`")
                finally:
                    conn.close()
        self._admin.clear()
        self._urls.clear()


def _psycopg_connect(url: str) -> Any:
    """An administrator's connection: autocommit, and no prepared statements (the URL may lead
    to PgBouncer in transaction mode); the URL's query holds Database options, not libpq's."""
    import psycopg

    return psycopg.connect(
        urlunsplit(urlsplit(url)._replace(query="")), autocommit=True, prepare_threshold=None
    )


def _pymysql_connect(url: str) -> Any:
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/") or None,
        autocommit=True,
        ssl_disabled=True,
    )


@pytest.fixture(scope="session")
def database_servers() -> Iterator[TestDatabases]:
    """This run's databases on the PostgreSQL and MariaDB servers, dropped at the end."""
    databases = TestDatabases()
    yield databases
    databases.close()


@pytest.fixture(params=selected_backends())
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, database_servers: TestDatabases
) -> Iterator[str]:
    """The URL of an empty database, once per selected backend (the test id names it).

    SQLite: a new file in the test's temporary directory. PostgreSQL and MariaDB: this run's
    database, emptied of tables after the test.
    """
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    url = database_servers.url(backend)
    try:
        yield url
    finally:
        database_servers.reset(backend)


@contextlib.contextmanager
def fresh_database(
    db: Database, url: str, models: Iterable[type[peewee.Model]] | None = None
) -> Iterator[Database]:
    """Point ``db`` at ``url`` with tables for ``models`` (default: all); undo it after.

    For an app whose ``db`` is defined at module level::

        @pytest.fixture
        def app(database_url):
            with fresh_database(notes.db, database_url):
                yield notes.app
    """
    previous, options = db.url, dataclasses.asdict(db.options)
    db.configure(url, **options)
    try:
        db.create_tables(models)
        yield db
    finally:
        db.close_all()
        if previous is not None:
            db.configure(previous, **options)


def _jobs_of(app: Any) -> Jobs:
    jobs = getattr(app, "extensions", {}).get("jobs")
    if jobs is None:
        raise LookupError("this app has no background jobs: create them with Jobs(app, db)")
    return jobs  # type: ignore[no-any-return]


def run_jobs(app: Any, *, include_scheduled: bool = False) -> int:
    """Run ``app``'s queued jobs now, in this process, until none is due; return how many ran.

    They run as a worker runs them (leased, retried, logged), one at a time, after whatever
    enqueued them has committed. ``include_scheduled=True`` also runs jobs due later. The
    ``run_jobs`` fixture of microback's pytest plugin is this for the ``app`` fixture.
    """
    return _jobs_of(app).run_pending(include_scheduled=include_scheduled)


def enqueued_jobs(app: Any, function: JobFunction[Any, Any] | None = None) -> list[Enqueued]:
    """The jobs waiting in ``app``'s queue (of one job function, if given), with the arguments
    they were enqueued with: ``[job.args for job in enqueued_jobs(app, send_receipt)]``."""
    return _jobs_of(app).enqueued(function)
