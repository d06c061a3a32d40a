"""Numbered migration files, applied in order and recorded in a table of the database.

This is peewee's own runner (``playhouse.migrations``) with what a command line needs on top:

- each migration is reported as it finishes, and one that fails raises :class:`MigrationFailed`,
  whose one-line message names the migration, the line of its file that raised, the error, and
  whether the database undid it;
- ``migrate`` and ``rollback`` hold a lock on PostgreSQL and MySQL/MariaDB, so that several hosts
  deploying at once apply each migration once (the others wait, then find nothing pending);
- targets may be given by number (``3``, ``0003``) as well as by full name.

A migration file defines ``up(migrator, db)`` and, where it can be undone, ``down(migrator, db)``;
``migrator`` is a :class:`playhouse.migrate.SchemaMigrator` and ``db`` the peewee database. The
runner wraps each one, with its record in the history table, in a transaction where the database
has transactional DDL (PostgreSQL, SQLite). MySQL and MariaDB commit every schema change at once,
so there a failed migration keeps the changes it made before failing, and is not recorded.
"""

from __future__ import annotations

import datetime
import os
import traceback
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee
from playhouse import migrations as _playhouse

from ._peewee import MigrationRunHook

__all__ = [
    "HISTORY_TABLE",
    "MigrationError",
    "MigrationFailed",
    "MigrationState",
    "Migrations",
]

#: peewee's default, so ``python -m playhouse.migrations`` can work on the same database.
HISTORY_TABLE = "schema_migration"

TEMPLATE = '''\
"""{title}"""

# `migrator` has playhouse.migrate's operations: add_column, drop_column, rename_column,
# add_index, drop_index, add_not_null, alter_column_type, rename_table, drop_table, sql, ...
# To create a table, declare a frozen copy of its model here (not an import of the app's:
# this file must keep working as the models change) and call db.create_tables([...]).
# from peewee import CharField


def up(migrator, db):
    migrator.migrate(
        # migrator.add_column("note", "title", CharField(default="")),
    )


def down(migrator, db):
    # Undo up(); delete this function if it cannot be undone, and rollback will refuse.
    raise NotImplementedError("down() is not written yet")
'''


class MigrationError(Exception):
    """A migration command cannot run; ``str()`` is one line that says why and what to do."""


class MigrationFailed(MigrationError):
    """A migration raised while it was applied or reverted."""

    def __init__(
        self,
        name: str,
        direction: str,
        error: BaseException,
        cause: str,
        *,
        undone: bool,
        atomic: bool,
    ) -> None:
        self.name = name
        self.direction = direction
        self.error = error
        #: True when the database rolled the whole migration back, its record included.
        self.undone = undone
        verb = "applying" if direction == "up" else "rolling back"
        if undone:
            outcome = "it was rolled back, so the schema and its record are as they were"
        else:
            why = (
                "it sets atomic = False"
                if not atomic
                else "this database commits each schema change at once"
            )
            outcome = (
                f"{why}, so what it changed before failing stayed, and its record did not "
                "change: undo those changes by hand, then run the command again"
            )
        super().__init__(f"{verb} migration {name} failed: {cause}; {outcome}")


@dataclass(frozen=True)
class MigrationState:
    """One migration: its file (``None`` if gone) and when it was applied (``None`` if not)."""

    name: str
    path: Path | None
    applied: datetime.datetime | None

    @property
    def pending(self) -> bool:
        """True when the file exists and the migration is not applied."""
        return self.applied is None


class _Migration(_playhouse.Migration):  # type: ignore[misc]
    """A migration file whose import errors name the file and the line."""

    __slots__ = ()

    def load(self) -> Any:
        try:
            return super().load()
        except Exception as exc:
            raise MigrationError(
                f"cannot load migration {self.name}: {summarize(exc, self.path)}"
            ) from exc


class _Runner(MigrationRunHook, _playhouse.Runner):  # type: ignore[misc]
    """playhouse's Runner: reports each migration as it finishes, names the one that fails."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.report: Callable[[str], None] = _ignore

    def migrations(self) -> list[_Migration]:
        return [_Migration(*migration) for migration in super().migrations()]

    def run_one(self, run: Callable[..., None], name: str, module: Any, direction: str) -> None:
        atomic = bool(getattr(module, "atomic", True))
        try:
            run(name, module, direction)
        except Exception as exc:
            cause = summarize(exc, getattr(module, "__file__", None))
            undone = atomic and self.migrator.transactional_ddl
            raise MigrationFailed(
                name, direction, exc, cause, undone=undone, atomic=atomic
            ) from exc
        self.report(name)


class Migrations:
    """The migration files in *directory* and their record in *database*.

    *database* is a peewee database (``Database(...).database``). Nothing is read or written
    until a method is called; each call uses the calling thread's connection.
    """

    def __init__(
        self,
        database: peewee.Database,
        directory: str | os.PathLike[str],
        *,
        table_name: str = HISTORY_TABLE,
    ) -> None:
        self.database = database
        self.directory = Path(directory)
        self.table_name = table_name
        self._runner = _Runner(database, str(self.directory), table_name=table_name)

    def status(self) -> list[MigrationState]:
        """Every migration, file or record, in order; a record whose file is gone has no path."""
        return [
            MigrationState(m.name, Path(m.path) if m.path else None, m.applied)
            for m in self._runner.status()
        ]

    def pending(self) -> list[MigrationState]:
        """The migrations that ``migrate`` would apply, in order."""
        return [m for m in self.status() if m.pending and m.path is not None]

    def new(self, name: str, body: str | None = None) -> Path:
        """Write the next numbered file (``0004_add_title.py``) and return its path."""
        title = name.replace('"', "'").replace("\\", "/").strip() or "A migration."
        text = body if body is not None else TEMPLATE.format(title=title)
        return Path(self._runner.create(name, body=text))

    def migrate(
        self,
        to: str | None = None,
        *,
        fake: bool = False,
        report: Callable[[str], None] | None = None,
    ) -> list[str]:
        """Apply the pending migrations in order, or up to and including *to*; return their names.

        With ``fake=True`` record them as applied without running them (after ``create-tables``).
        *report* is called with each name as soon as that migration is applied.
        """
        target = self._resolve(to, self.pending(), "pending") if to is not None else None
        with self._lock():
            return list(self._call("up", report, target, fake=fake))

    def rollback(
        self, through: str | None = None, *, report: Callable[[str], None] | None = None
    ) -> list[str]:
        """Revert the last applied migration, or every one back to and including *through*."""
        applied = [m for m in self.status() if not m.pending]
        target = self._resolve(through, applied, "applied") if through is not None else None
        with self._lock():
            return list(self._call("down", report, target))

    def _call(
        self, method: str, report: Callable[[str], None] | None, *args: Any, **kw: Any
    ) -> Any:
        self._runner.report = report or _ignore
        try:
            return getattr(self._runner, method)(*args, **kw)
        except _playhouse.MigrationError as exc:
            # Raised while planning, before anything ran: an unknown target, no up() or down().
            raise MigrationError(f"nothing was changed: {exc}".rstrip(".")) from exc

    def _resolve(self, given: str, candidates: list[MigrationState], kind: str) -> str:
        """Find a migration by full name (``0003_add_title``) or number (``3``, ``0003``)."""
        for migration in candidates:
            if migration.name == given:
                return given
        if given.isdigit():
            found = [m.name for m in candidates if _number(m.name) == int(given)]
            if len(found) == 1:
                return found[0]
            if found:
                raise MigrationError(f"{given} is ambiguous: {', '.join(found)}; give the name")
        names = ", ".join(m.name for m in candidates) or "none"
        raise MigrationError(f"no {kind} migration {given!r}; {kind} migrations: {names}")

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold a server-wide lock so that one process at a time migrates this database.

        Without it a second process fails rather than applying a migration twice where DDL is
        transactional (its record's unique name rolls it back), but on MySQL/MariaDB it would
        half-apply. SQLite goes without: one host, and writers serialized by the file lock.
        """
        key = zlib.crc32(f"microback.db.migrations:{self.table_name}".encode())
        db = self.database
        pooled = getattr(db, "microback_transaction_pooling", False)
        if isinstance(db, peewee.PostgresqlDatabase) and pooled:
            with _transaction_lock(db, key):
                yield
        elif isinstance(db, peewee.PostgresqlDatabase):
            _sql(db, "SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                _sql(db, "SELECT pg_advisory_unlock(%s)", (key,))
        elif isinstance(db, peewee.MySQLDatabase):
            name = f"microback_migrations_{key}"
            (got,) = _sql(db, "SELECT GET_LOCK(%s, %s)", (name, 3600)).fetchone()
            if got != 1:
                raise MigrationError("another process has held the migration lock for an hour")
            try:
                yield
            finally:
                _sql(db, "SELECT RELEASE_LOCK(%s)", (name,))
        else:
            yield


@contextmanager
def _transaction_lock(database: Any, key: int) -> Iterator[None]:
    """Hold PostgreSQL's advisory lock ``key`` in a transaction of a connection of its own.

    Behind a pooler in transaction mode (PgBouncer), ``pg_advisory_lock`` would be taken on
    whichever server connection ran that statement and released (or not) on another: the lock
    would stay with the server connection for good. A transaction keeps its server connection
    until it ends, and ``pg_advisory_xact_lock`` ends with it.
    """
    import psycopg

    with psycopg.connect(dbname=database.database, **database.connect_params) as connection:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        try:
            yield
        finally:
            connection.rollback()  # releases the lock


def _sql(database: Any, sql: str, params: tuple[Any, ...]) -> Any:
    return database.execute_sql(sql, params)  # untyped in peewee's stubs


def _ignore(name: str) -> None:
    pass


def _number(name: str) -> int | None:
    digits = name[: len(name) - len(name.lstrip("0123456789"))]
    return int(digits) if digits else None


def summarize(error: BaseException, path: str | None = None) -> str:
    """``Type: first line of the message (file:line)``, the line being the migration's own."""
    # A database error translated for HTTP keeps the driver's own message in ``raw``: on the
    # operator's terminal that says more than the answer a client would get.
    raw = getattr(error, "raw", None)
    lines = (raw if isinstance(raw, str) and raw else str(error)).strip().splitlines()
    text = type(error).__name__ + (f": {lines[0].strip()}" if lines else "")
    where = _summary_location(error, path)
    return f"{text} ({where})" if where else text


def _summary_location(error: BaseException, path: str | None) -> str:
    """``file:line`` of the deepest frame in the migration file *path*, or ``""``."""
    if path is None:
        return ""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{_relative(error.filename)}:{error.lineno}"
    resolved = Path(path).resolve()
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if Path(frame.filename).resolve() == resolved:
            return f"{_relative(frame.filename)}:{frame.lineno}"
    return ""


def _relative(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive, on Windows
        return path
