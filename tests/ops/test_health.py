"""Liveness and readiness routes: what each checks, and the 503 with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from microback import App, enable_health
from microback.db import Database
from microback.testing import TestClient


def test_routes_are_opt_in(app: App, client: TestClient) -> None:
    client.get("/livez", status=404)
    client.get("/readyz", status=404)


def _unreachable(app: App, tmp_path: Path, url: str) -> Database:
    """A database that was reachable at start-up and is not any more."""
    db = Database(app, f"sqlite:///{tmp_path / 'start.db'}")
    db.configure(url)
    return db


def test_liveness_answers_without_touching_the_database(app: App, tmp_path: Path) -> None:
    _unreachable(app, tmp_path, "postgresql://nobody@127.0.0.1:1/none")  # port 1: refused
    enable_health(app)
    client = TestClient(app)
    response = client.get("/livez")
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readiness_is_503_with_the_reason_when_the_database_cannot_be_reached(
    app: App, tmp_path: Path
) -> None:
    _unreachable(app, tmp_path, "postgresql://nobody:hunter2@127.0.0.1:1/none")
    enable_health(app)
    response = TestClient(app).get("/readyz", status=503)
    assert response.json["status"] == "unavailable"
    assert response.json["reason"].startswith("database: ")
    assert "hunter2" not in response.text


def test_readiness_is_200_with_a_reachable_database(app: App, db: Database) -> None:
    enable_health(app)
    assert TestClient(app).get("/readyz").json == {"status": "ok"}


def test_readiness_waits_for_the_database_no_longer_than_its_timeout(
    app: App, tmp_path: Path
) -> None:
    import socket

    import gevent

    # A server that accepts and never answers: the database "hangs".
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        _unreachable(
            app, tmp_path, f"postgresql://nobody@127.0.0.1:{port}/none?connect_timeout=30"
        )
        enable_health(app, db_timeout=0.5)
        client = TestClient(app)
        with gevent.Timeout(20):
            response = client.get("/readyz", status=503)
        assert response.json["reason"] == "database: no answer within 0.5s"
    finally:
        listener.close()


def test_readiness_is_503_while_migrations_are_pending(
    app: App, db: Database, tmp_path: Path
) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_first.py").write_text(
        "def up(migrator, db):\n    pass\n\n\ndef down(migrator, db):\n    pass\n"
    )
    (tmp_path / "served.py").write_text("")
    health = enable_health(app, target=f"{tmp_path / 'served.py'}:app")
    client = TestClient(app)
    response = client.get("/readyz", status=503)
    assert response.json["reason"] == "migrations not applied: 0001_first"
    from microback.db.migrations import Migrations

    Migrations(db.database, tmp_path / "migrations").migrate()
    assert client.get("/readyz").json == {"status": "ok"}
    assert health._migrations_applied


def test_readiness_is_503_once_the_server_drains(app: App) -> None:
    enable_health(app, live_path="/health/live", ready_path="/health/ready")
    client = TestClient(app)
    assert client.get("/health/ready").json == {"status": "ok"}
    response = client.get(
        "/health/ready", extra_environ={"microback.draining": lambda: True}, status=503
    )
    assert response.json["reason"] == "draining: the server is stopping"
    client.get("/health/live", extra_environ={"microback.draining": lambda: True}, status=200)


def test_a_bad_timeout_is_refused_at_set_up(app: App) -> None:
    with pytest.raises(ValueError, match="db_timeout must be more than 0"):
        enable_health(app, db_timeout=0)


def test_start_up_and_shutdown_hooks_run_in_order(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    app.on_startup(lambda: calls.append("open db client"))
    app.on_startup(lambda: calls.append("warm cache"))

    @app.on_shutdown
    def close_client() -> None:
        calls.append("close client")

    @app.on_shutdown
    def broken() -> None:
        raise RuntimeError("already closed")

    app.startup()
    app.shutdown()
    assert calls == ["open db client", "warm cache", "close client"]
    assert "shutdown hook" in caplog.text and "already closed" in caplog.text
