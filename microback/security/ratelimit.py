"""Rate limits counted in the database, so they hold across worker processes and hosts.

Counters are fixed windows: one row per key and window, incremented atomically with an
upsert. A client over the limit gets 429 with ``Retry-After`` set to the end of the window;
nothing is ever locked for longer than one window.

A hit is counted first and checked after (the upsert gives the new count): of 50 attempts
sent at once against a limit of 10, ten are let through, wherever they land. The count is
one statement on the request's own connection, outside the request's transaction
(``db.independent()``), committed before the request goes on: other workers see it at once,
a request that then fails cannot roll it back, and no request ever needs a second pooled
connection (which, with every connection held by a request waiting for another, would stall
the worker until the pool timeout). Only when the request's transaction has already begun
(the handler wrote before counting) is the count read there and written when the request
ends, which is not atomic against concurrent hits: count before writing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import peewee
from peewee import fn

from ..db.errors import DatabaseUnavailable
from ..http import Request, abort
from ..routing import guard_handler

if TYPE_CHECKING:
    from ..app import App
    from ..db import Database

__all__ = ["Limit", "RateLimiter", "parse_limit", "rate_limit"]

_F = TypeVar("_F", bound=Callable[..., Any])
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")
_DEFERRED = "microback.rate_limit.deferred"
logger = logging.getLogger("microback.security")
#: Rows of windows older than this are deleted now and then.
_KEEP_SECONDS = 2 * 86400
_DEADLOCK_RETRIES = 5


class Limit(NamedTuple):
    """``hits`` per ``period`` seconds."""

    hits: int
    period: int


def parse_limit(spec: str) -> Limit:
    """Read ``"10/minute"``, ``"100/hour"`` or ``"5/15minutes"`` into a :class:`Limit`."""
    match = _SPEC.match(spec)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"cannot read the rate limit {spec!r}; write it like '10/minute' or '5/15minutes'"
        )
    multiple = int(match.group(2) or 1)
    return Limit(int(match.group(1)), multiple * _PERIODS[match.group(3)])


_warned_no_address = False


def client_address(request: Request) -> str | None:
    """Key requests by client address (the proxy-corrected one, see ``trusted_proxies``).

    ``None`` when there is no usable address (a Unix socket without a trusted proxy in
    front): counting those under one key would make every client share one bucket, and
    one attacker could lock everyone out. Limits per address are then not applied.
    """
    global _warned_no_address
    address = request.remote_addr or ""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        if not _warned_no_address:
            _warned_no_address = True
            logger.warning(
                "no client address (REMOTE_ADDR is %r): limits per address are not applied; "
                "behind a proxy, list it in trusted_proxies",
                address[:60],
            )
        return None


class RateLimiter:
    """The counters of an app, in a table of its database (``rate_counter``)."""

    def __init__(self, app: App, db: Database) -> None:
        class RateCounter(db.Model):  # type: ignore[name-defined, misc]
            # A SHA-256 of the key: fixed length for the index, and no e-mail address at rest.
            key = peewee.CharField(max_length=64)
            window = peewee.BigIntegerField()
            hits = peewee.IntegerField(default=1)

            class Meta:
                table_name = "rate_counter"
                indexes = ((("key", "window"), True),)

        self.db = db
        self.model = RateCounter
        app.extensions["rate_limiter"] = self
        # After the database's own teardown, which ends the request's transaction.
        app.teardown(self._write_deferred)

    def hit(
        self, key: str, limit: Limit, *, request: Request | None = None, cost: int = 1
    ) -> int | None:
        """Count ``cost`` hits for ``key``; return seconds to wait if over ``limit``, else None.

        The count is committed before this returns (see the module's docstring), unless the
        request's transaction has already begun: then, given the ``request``, it is written
        when the request ends.
        """
        now = time.time()
        window = int(now // limit.period * limit.period)
        counter_key = _hashed(key)
        if request is not None and self.db.database.in_transaction():
            row = self.model.get_or_none(
                self.model.key == counter_key, self.model.window == window
            )
            hits = (row.hits if row is not None else 0) + cost
            self._defer(request, self._increment, counter_key, window, cost)
        else:
            hits = self._write(self._increment, counter_key, window, cost)
        if hits > limit.hits:
            return max(1, int(window + limit.period - now + 0.999))
        return None

    def forgive(self, key: str, limit: Limit, *, request: Request | None = None) -> None:
        """Take back one hit counted for ``key`` in the current window (it turned out fine)."""
        window = int(time.time() // limit.period * limit.period)
        self._write_now_or_later(request, self._increment, _hashed(key), window, -1)

    def reset(self, key: str, *, request: Request | None = None) -> None:
        """Forget every count for ``key`` (after a successful login, say)."""
        self._write_now_or_later(request, self._delete, _hashed(key))

    def _delete(self, counter_key: str) -> None:
        self.model.delete().where(self.model.key == counter_key).execute()

    def _write_now_or_later(
        self, request: Request | None, function: Callable[..., Any], *args: Any
    ) -> None:
        if request is not None and self.db.database.in_transaction():
            self._defer(request, function, *args)
        else:
            self._write(function, *args)

    def _write(self, function: Callable[..., Any], *args: Any) -> Any:
        if self.db.database.in_transaction():  # a caller's own transaction: part of it
            return function(*args)
        attempts = 0
        while True:
            try:
                with self.db.independent():  # each statement commits at once
                    return function(*args)
            except DatabaseUnavailable as exc:
                # Concurrent first upserts of one key can deadlock in InnoDB (each holds a
                # shared lock on the duplicate and wants an exclusive one); the database
                # fails one of them, and a statement on its own can simply run again.
                attempts += 1
                if not exc.deadlock or attempts == _DEADLOCK_RETRIES:
                    raise
                time.sleep(random.uniform(0.001, 0.01) * attempts)

    @staticmethod
    def _defer(request: Request, function: Callable[..., Any], *args: Any) -> None:
        request.environ.setdefault(_DEFERRED, []).append((function, args))

    def _write_deferred(self, request: Request, error: BaseException | None) -> None:
        # After the database's own teardown: the request's transaction has ended and its
        # connection is back in the pool, so this takes one connection, not a second.
        deferred = request.environ.pop(_DEFERRED, ())
        if not deferred:
            return
        try:
            for function, args in deferred:
                self._write(function, *args)
        finally:
            self.db.release()

    def _increment(self, counter_key: str, window: int, cost: int) -> int:
        # One statement that adds and gives the new count: atomic on its own, and the row is
        # locked only while it runs (concurrent hits on one key queue on that lock).
        model = self.model
        query = model.insert(key=counter_key, window=window, hits=cost)
        if isinstance(self.db.database, peewee.MySQLDatabase):
            hits = self._increment_mysql(query, cost)
        else:
            query = query.on_conflict(
                conflict_target=[model.key, model.window],
                update={model.hits: model.hits + cost},
            ).returning(model.hits)
            hits = int(next(iter(query.execute())).hits)
        if random.random() < 0.01:
            model.delete().where(model.window < window - _KEEP_SECONDS).execute()
        return hits

    def _increment_mysql(self, query: Any, cost: int) -> int:
        # MySQL has no RETURNING for an upsert: LAST_INSERT_ID(expr) keeps the new count for
        # this connection, and the affected-row count tells an insert (1) from an update (2).
        model = self.model
        query = query.on_conflict(update={model.hits: fn.LAST_INSERT_ID(model.hits + cost)})
        cursor = self.db.database.execute(query)
        return cost if cursor.rowcount == 1 else int(cursor.lastrowid)


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def rate_limit(
    spec: str,
    *,
    key: Callable[[Request], str | None] = client_address,
    scope: str | None = None,
) -> Callable[[_F], _F]:
    """Limit a handler to ``spec`` hits (``"10/minute"``) per ``key(request)``.

    The key is the client address by default; pass ``key=lambda r: str(r.user.id)`` to limit
    per user. A key of ``None`` (no usable client address) is not limited. Over the limit
    the handler is not called: 429 with ``Retry-After``. The app needs a
    :class:`RateLimiter` (``Auth`` makes one).
    """
    limit = parse_limit(spec)

    def decorator(handler: _F) -> _F:
        name = scope or f"{handler.__module__}.{handler.__qualname__}"

        def check(request: Request) -> None:
            limiter: RateLimiter | None = request.app.extensions.get("rate_limiter")
            if limiter is None:
                raise RuntimeError("@rate_limit needs RateLimiter(app, db) (Auth makes one)")
            value = key(request)
            wait = (
                None if value is None else limiter.hit(f"{name}:{value}", limit, request=request)
            )
            if wait is not None:
                abort(
                    429,
                    f"too many requests; try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )

        limited = guard_handler(handler, f"@rate_limit({spec!r})", check)
        limited.microback_rate_limit = spec  # type: ignore[attr-defined]  # read by openapi
        return limited

    return decorator
