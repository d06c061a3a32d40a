"""Rate limits counted in the database, so they hold across worker processes and hosts.

Counters are fixed windows: one row per key and window, incremented atomically with an
upsert. A client over the limit gets 429 with ``Retry-After`` set to the end of the window;
nothing is ever locked for longer than one window.

Counts are written on their own connection and committed at once: a login that fails and
then raises 401 must still count, even when ``atomic_requests`` rolls the request's own
transaction back. SQLite allows one writer at a time and a request transaction holds that
lock until it ends, so there the count is decided inside the transaction and written just
after it, at teardown.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import peewee

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
#: Rows of windows older than this are deleted now and then.
_KEEP_SECONDS = 2 * 86400


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


def client_address(request: Request) -> str:
    """Key requests by client address (the proxy-corrected one, see ``trusted_proxies``)."""
    return request.remote_addr or "unknown"


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

        Pass the ``request`` when there is one: on SQLite inside its transaction, the count is
        then written when the request ends instead of waiting for the lock it holds.
        """
        now = time.time()
        window = int(now // limit.period * limit.period)
        counter_key = hashlib.sha256(key.encode()).hexdigest()
        if request is not None and self._request_holds_write_lock():
            row = self.model.get_or_none(
                self.model.key == counter_key, self.model.window == window
            )
            hits = (row.hits if row is not None else 0) + cost
            self._defer(request, self._increment, counter_key, window, cost)
        else:
            hits = self._on_own_connection(self._increment, counter_key, window, cost)
        if hits > limit.hits:
            return max(1, int(window + limit.period - now + 0.999))
        return None

    def peek(self, key: str, limit: Limit) -> int | None:
        """Like :meth:`hit` without counting: seconds to wait if ``key`` is over ``limit``."""
        now = time.time()
        window = int(now // limit.period * limit.period)
        counter_key = hashlib.sha256(key.encode()).hexdigest()
        row = self.model.get_or_none(self.model.key == counter_key, self.model.window == window)
        if row is not None and row.hits >= limit.hits:
            return max(1, int(window + limit.period - now + 0.999))
        return None

    def reset(self, key: str, *, request: Request | None = None) -> None:
        """Forget every count for ``key`` (after a successful login, say)."""
        counter_key = hashlib.sha256(key.encode()).hexdigest()
        if request is not None and self._request_holds_write_lock():
            self._defer(request, self._delete, counter_key)
        else:
            self._on_own_connection(self._delete, counter_key)

    def _delete(self, counter_key: str) -> None:
        self.model.delete().where(self.model.key == counter_key).execute()

    def _request_holds_write_lock(self) -> bool:
        database = self.db.database
        return isinstance(database, peewee.SqliteDatabase) and bool(database.in_transaction())

    @staticmethod
    def _defer(request: Request, function: Callable[..., Any], *args: Any) -> None:
        request.environ.setdefault(_DEFERRED, []).append((function, args))

    def _write_deferred(self, request: Request, error: BaseException | None) -> None:
        for function, args in request.environ.pop(_DEFERRED, ()):
            self._on_own_connection(function, *args)

    def _increment(self, counter_key: str, window: int, cost: int) -> int:
        model = self.model
        query = model.insert(key=counter_key, window=window, hits=cost)
        if isinstance(self.db.database, peewee.MySQLDatabase):
            # MySQL upserts on any unique key; it takes no conflict target.
            query = query.on_conflict(update={model.hits: model.hits + cost})
        else:
            query = query.on_conflict(
                conflict_target=[model.key, model.window],
                update={model.hits: model.hits + cost},
            )
        with self.db.database.atomic():
            query.execute()
            hits = int(
                model.select(model.hits)
                .where(model.key == counter_key, model.window == window)
                .scalar()
            )
        if random.random() < 0.01:
            model.delete().where(model.window < window - _KEEP_SECONDS).execute()
        return hits

    def _on_own_connection(self, function: Callable[..., Any], *args: Any) -> Any:
        # peewee keeps one connection per thread (per greenlet under gevent): a short-lived
        # thread has its own, outside the request's transaction, and commits on its own.
        if self.db.shared_connection:  # sqlite:///:memory: has only the one connection
            return function(*args)
        result: list[Any] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with self.db.database.connection_context():
                    result.append(function(*args))
            except BaseException as exc:
                failure.append(exc)

        worker = threading.Thread(target=run, name="microback-rate-limit")
        worker.start()
        worker.join()
        if failure:
            raise failure[0]
        return result[0]


def rate_limit(
    spec: str, *, key: Callable[[Request], str] = client_address, scope: str | None = None
) -> Callable[[_F], _F]:
    """Limit a handler to ``spec`` hits (``"10/minute"``) per ``key(request)``.

    The key is the client address by default; pass ``key=lambda r: str(r.user.id)`` to limit
    per user. Over the limit the handler is not called: 429 with ``Retry-After``. The app
    needs a :class:`RateLimiter` (``Auth`` makes one).
    """
    limit = parse_limit(spec)

    def decorator(handler: _F) -> _F:
        name = scope or f"{handler.__module__}.{handler.__qualname__}"

        def limited(request: Request, *args: Any, **kwargs: Any) -> Any:
            limiter: RateLimiter | None = request.app.extensions.get("rate_limiter")
            if limiter is None:
                raise RuntimeError("@rate_limit needs RateLimiter(app, db) (Auth makes one)")
            wait = limiter.hit(f"{name}:{key(request)}", limit, request=request)
            if wait is not None:
                abort(
                    429,
                    f"too many requests; try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            return handler(request, *args, **kwargs)

        guard_handler(limited, handler, f"@rate_limit({spec!r})")
        return limited  # type: ignore[return-value]

    return decorator
