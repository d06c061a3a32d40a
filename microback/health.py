"""Liveness and readiness routes for load balancers and orchestrators, opt-in.

Liveness (``/livez`` by default) answers 200 as long as the process can run a handler: it
touches nothing else, so a database outage does not get every process restarted. Readiness
(``/readyz``) answers 200 only when this process should get traffic, and 503 with the reason
otherwise:

- the server is draining (a graceful stop or reload began: ``environ["microback.draining"]``,
  the signal :mod:`microback.server.environ` documents), checked first so that a stopping
  process is taken out of rotation before it stops accepting (``--drain-delay``);
- the database (when the app has one) does not answer ``SELECT 1`` within ``db_timeout``;
- migrations beside the served module are not all applied (the same check ``microback serve``
  warns about at start-up). Once none is pending, the answer is kept for the process's life.

The routes reveal no data, only why a process is not ready; a database error is masked as
:meth:`~microback.db.Database.check` masks it (no password).
"""

from __future__ import annotations

from typing import Any

from .app import App
from .blocking import run_bounded
from .http import Request, Response, json_dumps

__all__ = ["Health", "enable_health"]


class Health:
    """The state behind the two routes; ``app.extensions["health"]``.

    *target* is what ``microback serve`` was given (``module:app``): it locates the
    ``migrations/`` folder; ``microback serve`` sets it, a test may pass it.
    """

    def __init__(self, app: App, db_timeout: float, target: str | None) -> None:
        self.app = app
        self.db_timeout = db_timeout
        self.target = target
        self._migrations_applied = False

    def live(self, request: Request) -> Response:
        """Answer 200 ``{"status": "ok"}``."""
        return _answer(200, "ok")

    def ready(self, request: Request) -> Response:
        """Answer 200 when ready, else 503 with ``{"status": "unavailable", "reason": ...}``."""
        reason = self.not_ready_reason(request.environ)
        return _answer(503, "unavailable", reason) if reason else _answer(200, "ok")

    def not_ready_reason(self, environ: dict[str, Any]) -> str | None:
        """Why this process should not get traffic now, or ``None``."""
        draining = environ.get("microback.draining")
        if draining is not None and draining():
            return "draining: the server is stopping"
        db = self.app.extensions.get("db")
        if db is None:
            return None
        problem = self._database_problem(db)
        if problem:
            return problem
        return self._migrations_problem()

    def _database_problem(self, db: Any) -> str | None:
        # In a thread, so the timeout holds whatever the driver does while connecting (a
        # blocking connect to a host that never answers); the thread finishes on its own,
        # bounded by the driver's connect timeout.
        def select_one() -> None:
            with db._connected() as database:
                database.execute_sql("SELECT 1")

        try:
            if db.shared_connection:  # SQLite ':memory:': one connection, of this thread
                select_one()
            else:
                run_bounded(select_one, self.db_timeout)
        except TimeoutError:
            return f"database: no answer within {self.db_timeout:g}s"
        except Exception as exc:  # the driver's errors, or the layer's DatabaseUnavailable
            text = getattr(exc, "description", None) or str(exc) or type(exc).__name__
            return f"database: {db._masked(text.splitlines()[0])}"
        return None

    def _migrations_problem(self) -> str | None:
        if self._migrations_applied or self.target is None:
            return None
        from .db.cli import pending_migrations

        names = pending_migrations(self.app, self.target)
        if names:
            return f"migrations not applied: {', '.join(names)}"
        self._migrations_applied = True
        return None


def enable_health(
    app: App,
    *,
    live_path: str = "/livez",
    ready_path: str = "/readyz",
    db_timeout: float = 2.0,
    target: str | None = None,
) -> Health:
    """Add the liveness and readiness routes to *app* (see the module docstring)."""
    if not db_timeout > 0:
        raise ValueError(f"db_timeout must be more than 0 seconds, not {db_timeout}")
    health = Health(app, db_timeout, target)
    app.extensions["health"] = health
    app.add_route(live_path, health.live, ["GET"], endpoint="health_live")
    app.add_route(ready_path, health.ready, ["GET"], endpoint="health_ready")
    return health


def _answer(status: int, word: str, reason: str | None = None) -> Response:
    body: dict[str, str] = {"status": word}
    if reason:
        body["reason"] = reason
    response = Response.buffered(json_dumps(body).encode(), status, "application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def record_target(app: object, target: str) -> None:
    """Tell *app*'s health routes, if any, the target it was loaded from (for migrations)."""
    extensions = getattr(app, "extensions", None)
    health = extensions.get("health") if isinstance(extensions, dict) else None
    if isinstance(health, Health) and health.target is None:
        health.target = target
