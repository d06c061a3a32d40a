"""A guard above the route decorator is an error at import time, not an open route.

For each of microback's guards: below the route decorator it refuses an anonymous client;
above it, decorating fails with a TypeError that names the guard to move.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest
from rate_windows import start_in_a_fresh_window

from microback import App
from microback.db import Database
from microback.security import (
    Auth,
    login_required,
    rate_limit,
    requires_role,
    requires_scope,
)
from microback.testing import TestClient

from .conftest import SECRET

# name in the error, the decorator, and what an anonymous client gets on its first two calls
GUARDS = {
    "@login_required": (login_required, (401, 401)),
    "@requires_role('admin')": (requires_role("admin"), (401, 401)),
    "@requires_scope('notes:read')": (requires_scope("notes:read"), (401, 401)),
    "@rate_limit('1/minute')": (rate_limit("1/minute"), (200, 429)),
}


@pytest.fixture
def app(tmp_path):
    start_in_a_fresh_window(60, 5)  # '1/minute' must not restart between the two calls
    app = App(secret_key=SECRET)
    db = Database(app, f"sqlite:///{tmp_path / 'order.db'}")
    Auth(app, db, password_rounds=10)
    db.create_tables()
    yield app
    db.close_all()


@pytest.mark.parametrize("name", GUARDS)
def test_a_guard_below_the_route_decorator_guards_the_route(app, name):
    guard, statuses = GUARDS[name]

    @app.get("/private")
    @guard
    def private(request):
        return {"secret": 42}

    client = TestClient(app)
    assert [client.get("/private", status="*").status_int for _ in statuses] == list(statuses)


@pytest.mark.parametrize("name", GUARDS)
def test_a_guard_above_the_route_decorator_is_an_error_naming_it(app, name):
    guard, _ = GUARDS[name]
    with pytest.raises(TypeError) as caught:

        @guard
        @app.get("/private")
        def private(request):
            return {"secret": 42}

    message = str(caught.value)
    assert message.startswith(f"{name} is above the route decorator of ")
    assert "private (GET /private)" in message and f"move {name} below" in message


def test_a_guard_above_another_decorator_above_the_route_is_found(app):
    def logged(handler):
        @functools.wraps(handler)
        def wrapper(*args, **kwargs):
            return handler(*args, **kwargs)

        return wrapper

    with pytest.raises(TypeError, match="@login_required is above the route decorator"):

        @login_required
        @logged
        @app.get("/private")
        def private(request):
            return {}


def test_a_guard_between_two_route_decorators_is_found(app):
    with pytest.raises(TypeError, match=r"\(GET /b\)"):

        @app.get("/a")
        @login_required
        @app.get("/b")
        def both(request):
            return {}


def test_a_function_routed_with_add_route_may_also_be_guarded_elsewhere(app):
    def item(request):
        return {"item": 1}

    app.add_route("/public", item)
    app.add_route("/private", login_required(item), endpoint="private")
    client = TestClient(app)
    assert client.get("/public").json == {"item": 1}
    client.get("/private", status=401)


@dataclasses.dataclass
class Note:
    text: str


# What an anonymous client sending an invalid body gets on its first two calls: a guard's
# refusal comes before the body is read (a 422 would tell the body's rules to anybody).
GUARDED_BODY = {
    "@login_required": (401, 401),
    "@requires_role('admin')": (401, 401),
    "@requires_scope('notes:read')": (401, 401),
    # the invalid body counts against the limit: the second call is refused before validation
    "@rate_limit('1/minute')": (422, 429),
}


@pytest.mark.parametrize("name", GUARDS)
def test_a_guard_refuses_before_the_declared_body_is_read(app, name):
    guard, _ = GUARDS[name]

    @app.post("/notes")
    @guard
    def add(request, note: Note):
        return {"text": note.text}

    client = TestClient(app)
    statuses = [client.post_json("/notes", {"text": 5}, status="*").status_int for _ in range(2)]
    assert statuses == list(GUARDED_BODY[name])


def test_a_signed_in_user_gets_the_declared_body_through_the_guards(app):
    auth = app.extensions["auth"]
    user = auth.create_user("ada@example.org", "a long enough password", roles="admin")

    @app.post("/notes")
    @login_required
    @requires_role("admin")
    def add(request, note: Note):
        return {"text": note.text, "by": request.user.email}

    client = TestClient(app)
    client.log_in(user)
    assert client.post_json("/notes", {"text": "milk"}).json == {
        "text": "milk",
        "by": "ada@example.org",
    }
    refused = client.post_json("/notes", {"text": 5}, status=422)
    assert [e["path"] for e in refused.json["errors"]] == [["text"]]
