"""Flash messages: kept in the session (cookie or database), shown once, across a redirect."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from microback import App, flash, get_flashed_messages, redirect
from microback.db import Database
from microback.security import Auth, CookieSessions, DatabaseSessions
from microback.testing import TestClient, TestDatabases, database_servers, selected_backends

__all__ = ["database_servers"]  # a fixture, imported for pytest

SECRET = "flash-test-secret-0123456789abcdef0123"


def add_routes(app: App) -> App:
    @app.get("/flash")
    def add(request):
        flash(request, "first")
        flash(request, "second <b>", category="error")
        return redirect("/show", 303)

    @app.get("/show")
    def show(request):
        return {"messages": get_flashed_messages(request)}

    @app.get("/show-twice")
    def show_twice(request):
        pairs = get_flashed_messages(request, with_categories=True)
        return {"pairs": pairs, "again": get_flashed_messages(request)}

    return app


def cookie_app() -> App:
    app = App(secret_key=SECRET)
    CookieSessions(app)
    return add_routes(app)


@pytest.fixture(params=["cookie", *(f"database-{name}" for name in selected_backends())])
def any_app(request: pytest.FixtureRequest, tmp_path: Path, database_servers: TestDatabases):
    """An app keeping its sessions in the cookie, then in each selected database."""
    if request.param == "cookie":
        yield cookie_app()
        return
    backend = request.param.removeprefix("database-")
    sqlite = f"sqlite:///{tmp_path / 'sessions.db'}"
    app = App(secret_key=SECRET)
    db = Database(app, sqlite if backend == "sqlite" else database_servers.url(backend))
    DatabaseSessions(app, db)
    db.create_tables()
    try:
        yield add_routes(app)
    finally:
        db.close_all()
        if backend != "sqlite":
            database_servers.reset(backend)


def test_messages_survive_the_redirect_and_are_shown_once(any_app: App) -> None:
    client = TestClient(any_app)

    shown = client.get("/flash").follow()

    assert shown.json == {"messages": ["first", "second <b>"]}
    assert client.get("/show").json == {"messages": []}


def test_categories_and_repeated_reads_in_one_request(any_app: App) -> None:
    client = TestClient(any_app)
    client.get("/flash")

    answer = client.get("/show-twice").json

    assert answer == {
        "pairs": [["info", "first"], ["error", "second <b>"]],
        "again": ["first", "second <b>"],
    }
    assert client.get("/show").json == {"messages": []}


def test_reading_no_messages_sets_no_cookie() -> None:
    answer = TestClient(cookie_app()).get("/show")

    assert answer.json == {"messages": []}
    assert "Set-Cookie" not in answer.headers


def test_a_login_keeps_the_messages_and_a_logout_drops_them(tmp_path: Path) -> None:
    app = add_routes(App(secret_key=SECRET))
    db = Database(app, f"sqlite:///{tmp_path / 'users.db'}")
    auth = Auth(app, db, password_rounds=10)
    db.create_tables()
    ada = auth.create_user("ada@example.org", "correct horse battery")

    @app.get("/login")
    def login(request):
        auth.login(request, ada)  # rotates the session
        return {}

    @app.get("/logout")
    def logout(request):
        auth.logout(request)
        return {}

    client = TestClient(app)
    client.get("/flash")
    client.get("/login")
    assert client.get("/show").json == {"messages": ["first", "second <b>"]}
    client.get("/flash")
    client.get("/logout")
    assert client.get("/show").json == {"messages": []}


def test_without_sessions_flash_says_what_to_create(caplog: pytest.LogCaptureFixture) -> None:
    app = add_routes(App(secret_key=SECRET))

    with caplog.at_level(logging.ERROR, logger="microback.app"):
        TestClient(app).get("/flash", status=500)

    logged = "\n".join(record.exc_text or "" for record in caplog.records)
    assert "flash messages are kept in the session: create CookieSessions(app)" in logged


def test_a_message_must_be_text(caplog: pytest.LogCaptureFixture) -> None:
    app = App(secret_key=SECRET)
    CookieSessions(app)

    @app.get("/")
    def bad(request):
        flash(request, 42)
        return {}

    with caplog.at_level(logging.ERROR, logger="microback.app"):
        TestClient(app).get("/", status=500)

    logged = "\n".join(record.exc_text or "" for record in caplog.records)
    assert "TypeError: flash() takes a message and a category that are strings" in logged
