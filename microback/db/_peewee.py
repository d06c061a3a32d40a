"""Every use of a private name of peewee (and its ``playhouse`` pool) in microback.

peewee documents no hook for what microback needs here, so each function or mixin below says
why it reaches inside, and ``tests/db/test_peewee_seam.py`` has one test per name, pinning the
behaviour relied on: an upgrade that changes it fails that named test, not a request somewhere.
``Model._meta`` is peewee's documented model metadata, not private, and is used everywhere.
pyproject.toml bounds peewee below its next major version.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import peewee

__all__ = [
    "AtomicBlock",
    "CheckoutCheck",
    "MigrationRunHook",
    "OpenHook",
    "ReleaseHook",
    "connection_state_is_thread_local",
    "index_expressions",
    "index_name",
    "pool_in_use",
    "pool_wait_timeout",
    "postgresql_idle",
    "rows_of",
]

#: The class ``Database.atomic()`` returns; subclassed to run a hook before a block begins.
AtomicBlock: type[Any] = peewee._atomic


def connection_state_is_thread_local() -> bool:
    """Whether peewee's per-thread connection state is gevent's local (patched before import).

    peewee subclasses ``threading.local`` as ``_ConnectionLocal`` when it is imported.
    """
    return threading.local in peewee._ConnectionLocal.__mro__


def rows_of(query: Any, cursor: Any) -> Any:
    """Turn a cursor of ``execute_sql`` into the query's rows, as ``query.execute()`` does.

    The cached primary-key lookup runs its SQL itself, skipping peewee's query building.
    """
    return query._get_cursor_wrapper(cursor)


def index_name(index: Any) -> str | None:
    """The name of a model's ``peewee.Index`` (from ``_meta.fields_to_index()``); no getter."""
    name: str | None = getattr(index, "_name", None)
    return name


def index_expressions(index: Any) -> list[Any]:
    """The columns (fields or expressions) of a ``peewee.Index``; no getter."""
    return list(index._expressions)


def pool_wait_timeout(database: Any) -> float:
    """How long a pooled database waits for a free connection (its ``timeout=`` argument)."""
    timeout: float = database._wait_timeout
    return timeout


def pool_in_use(database: Any) -> int:
    """How many connections of a ``playhouse.pool`` database are checked out now.

    The pool keeps them in ``_in_use`` (a dict by connection key); it has no public count.
    """
    return len(database._in_use)


def postgresql_idle(database: Any, conn: Any) -> bool:
    """Whether a psycopg connection is outside any transaction, through peewee's adapter.

    peewee hides psycopg 2 and 3's different status APIs behind ``_adapter``.
    """
    adapter = database._adapter
    return bool(adapter.txn_status(conn) == adapter.txn_idle)


class OpenHook:
    """Mixed in before a peewee database: ``open_connection`` wraps opening a driver connection.

    peewee opens every connection through ``Database._connect()``.
    """

    def open_connection(self, open_: Callable[[], Any]) -> Any:
        return open_()

    def _connect(self) -> Any:
        return self.open_connection(super()._connect)  # type: ignore[misc]


class ReleaseHook:
    """Mixed in before a ``playhouse.pool`` class: ``released()`` runs after one goes back.

    The pool returns (or discards) a connection through ``PooledDatabase._close()``.
    """

    def released(self) -> None:
        """A connection went back to the pool or was closed."""

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        super()._close(conn, close_conn)  # type: ignore[misc]
        self.released()


class CheckoutCheck:
    """Mixed in before a ``playhouse.pool`` class: ``unusable(conn)`` vets a pooled connection.

    The pool asks ``PooledDatabase._is_closed(conn)`` before handing a pooled connection out,
    and discards it when the answer is true. ``pool_says_unusable`` is the pool's own check.
    """

    def unusable(self, conn: Any) -> bool:
        return self.pool_says_unusable(conn)

    def pool_says_unusable(self, conn: Any) -> bool:
        return bool(super()._is_closed(conn))  # type: ignore[misc]

    def _is_closed(self, conn: Any) -> bool:
        return self.unusable(conn)


class MigrationRunHook:
    """Mixed in before ``playhouse.migrations.Runner``: ``run_one`` wraps each migration's run.

    The runner runs (or fakes) each migration through ``Runner._run(name, module, direction,
    fake)``, inside its transaction when the migration is atomic.
    """

    def run_one(self, run: Callable[..., None], name: str, module: Any, direction: str) -> None:
        run(name, module, direction)

    def _run(self, name: str, module: Any, direction: str, fake: bool = False) -> None:
        run = functools.partial(super()._run, fake=fake)  # type: ignore[misc]
        self.run_one(run, name, module, direction)
