"""Waiting for SQLite's write lock without freezing the process.

SQLite lets one connection write at a time. Its own way of waiting for the lock, the busy
handler, sleeps inside the C call: under gevent that freezes every greenlet of the worker,
including the one that holds the lock and would release it, so one slow writer stalls
everything for the whole busy timeout. Here the busy timeout is 0 and the waiting happens
in Python, where gevent can run other requests meanwhile:

- within a process, writers queue on a lock (gevent's, once ``microback serve`` patched the
  standard library), so only one of them at a time asks SQLite for its lock;
- across processes (``--workers 2``), a writer that SQLite refuses (``SQLITE_BUSY``) sleeps and
  tries again, 1 ms then doubling up to 50 ms;
- the whole wait is bounded (the pool timeout by default), then the request is a 503.

Readers never wait: with WAL they read a snapshot while a writer writes.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import peewee

from ._peewee import OpenHook
from .errors import DatabaseUnavailable, original

__all__ = ["OneWriterAtATime", "is_write", "not_writable"]

_R = TypeVar("_R")
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_FIRST_PAUSE, _LONGEST_PAUSE = 0.0005, 0.005

# Statements that take SQLite's write lock (or row locks elsewhere), including a CTE that ends
# in a write and a locking read. A read that this takes for a write only costs an early lock.
_WRITE = re.compile(
    r"\s*(?:INSERT|UPDATE|DELETE|REPLACE|UPSERT|CREATE|DROP|ALTER)\b"
    r"|\s*WITH\b.*\b(?:INSERT|UPDATE|DELETE)\b"
    r"|.*\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE)\b"
    r"|.*\bLOCK\s+IN\s+SHARE\s+MODE\b",
    re.IGNORECASE | re.DOTALL,
)


def is_write(sql: str) -> bool:
    """Tell whether ``sql`` writes (or locks rows), so it needs the write lock."""
    return _WRITE.match(sql) is not None


def not_writable(path: str) -> list[str]:
    """Say what keeps SQLite from writing to the database file at ``path`` (nothing: ``[]``).

    SQLite opens a file it cannot write read-only and says so only at the first write, and
    in WAL mode it also creates ``-wal`` and ``-shm`` files next to the database.
    """
    file = Path(path).resolve()
    problems = []
    if file.exists() and not os.access(file, os.W_OK):
        problems.append(f"the SQLite database {str(file)!r} is not writable")
    if not os.access(file.parent, os.W_OK | os.X_OK):
        problems.append(
            f"the directory {str(file.parent)!r} of the SQLite database is not writable "
            "(SQLite keeps its -wal and -shm files there)"
        )
    return problems


def _busy(error: BaseException) -> bool:
    driver_error = original(error) if isinstance(error, peewee.PeeweeException) else error
    if not isinstance(driver_error, sqlite3.OperationalError):
        return False
    code = getattr(driver_error, "sqlite_errorcode", 0) & 0xFF
    return code in (_SQLITE_BUSY, _SQLITE_LOCKED) or str(driver_error).startswith(
        "database is locked"
    )


class OneWriterAtATime(OpenHook):
    """Mixed into the pooled SQLite database: cooperative waits for the write lock.

    Transactions begin with ``BEGIN IMMEDIATE`` (the write lock up front: a deferred one
    that read first would fail when another writer got in between, and could not be
    retried), so a transaction holds this process's writer lock from ``begin`` to
    ``commit`` or ``rollback``; a write outside a transaction holds it for its statement.
    """

    #: Seconds a writer may wait for the lock in all, then a 503 (set by ``build``).
    microback_lock_wait: float = 5.0
    microback_retry_after: int = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Made here, after microback serve patched threading: gevent's lock then.
        self._microback_writer = threading.Lock()
        self._microback_holder = threading.local()

    # --- the process's writer lock -----------------------------------------------------------

    def _holds_writer(self) -> bool:
        return bool(getattr(self._microback_holder, "held", False))

    def _take_writer(self, deadline: float) -> None:
        if self._holds_writer():
            return
        if not self._microback_writer.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise self._too_busy("other requests of this process held it")
        self._microback_holder.held = True

    def _release_writer(self) -> None:
        if self._holds_writer():
            self._microback_holder.held = False
            self._microback_writer.release()

    def _too_busy(self, why: str) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            "the database is busy with other writes; try again shortly",
            raw=f"gave up waiting {self.microback_lock_wait:g} s for SQLite's write lock: {why}",
            retry_after=self.microback_retry_after,
        )

    def _patiently(self, deadline: float, call: Callable[..., _R], *args: Any) -> _R:
        """Call ``call(*args)``, sleeping and trying again while SQLite says it is busy."""
        pause = _FIRST_PAUSE
        while True:
            try:
                return call(*args)
            except (peewee.OperationalError, sqlite3.OperationalError) as exc:
                left = deadline - time.monotonic()
                if not _busy(exc) or left <= 0:
                    if _busy(exc):
                        raise self._too_busy("another process held it") from exc
                    raise
            # Jitter keeps two workers that collided from colliding again in step.
            time.sleep(min(left, pause * random.uniform(0.5, 1.5)))  # noqa: S311 (not a secret)
            pause = min(pause * 2, _LONGEST_PAUSE)

    def _deadline(self) -> float:
        return time.monotonic() + self.microback_lock_wait

    # --- peewee's entry points ---------------------------------------------------------------

    def open_connection(self, open_: Callable[[], Any]) -> Any:
        # Opening a WAL file can meet a lock too (another process recovering it).
        return self._patiently(self._deadline(), open_)

    def begin(self, lock_type: str | None = None) -> None:
        deadline = self._deadline()
        self._take_writer(deadline)
        try:
            self._patiently(deadline, super().begin, lock_type)  # type: ignore[misc]
        except BaseException:
            self._release_writer()
            raise

    def commit(self) -> None:
        try:
            super().commit()  # type: ignore[misc]
        finally:
            self._release_writer()

    def rollback(self) -> None:
        try:
            super().rollback()  # type: ignore[misc]
        finally:
            self._release_writer()

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        run = super().execute_sql  # type: ignore[misc]
        if self.in_transaction():  # type: ignore[attr-defined]
            return run(sql, params)  # BEGIN IMMEDIATE took the lock already
        deadline = self._deadline()
        if not is_write(sql):
            return self._patiently(deadline, run, sql, params)
        self._take_writer(deadline)  # a statement on its own is its own transaction
        try:
            return self._patiently(deadline, run, sql, params)
        finally:
            self._release_writer()
