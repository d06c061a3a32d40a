"""Fixtures for the security tests that need users: an app with Auth on each backend."""

from __future__ import annotations

import pytest

from microback import App, abort
from microback.db import Database, fields
from microback.security import (
    Auth,
    Csrf,
    login_required,
    owned_or_404,
    requires_role,
    requires_scope,
)
from microback.testing import TestClient, database_servers, database_url

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest

SECRET = "auth-tests-secret-key-0123456789-abcdef"
PASSWORD = "correct horse battery staple"


def build_app(url: str, *, db_options=None, **auth_options):
    """A small app with users, login, notes that belong to users, and an admin page."""
    app = App(secret_key=SECRET)
    db = Database(app, url, **(db_options or {}))
    auth_options.setdefault("password_rounds", 10)
    auth = Auth(app, db, **auth_options)

    class Note(db.Model):
        owner = fields.ForeignKeyField(auth.User, backref="notes")
        text = fields.TextField()

    db.create_tables()

    @app.post("/login")
    def login(request):
        data = request.json
        user = auth.authenticate(request, data["email"], data["password"])
        if user is None:
            abort(401, "wrong e-mail address or password")
        auth.login(request, user)
        return {"id": user.id}

    @app.post("/logout")
    def logout(request):
        auth.logout(request)
        return {}

    @app.get("/me")
    @login_required
    @requires_scope("profile")
    def me(request):
        return request.user.to_dict()

    @app.get("/admin")
    @requires_role("admin")
    def admin(request):
        return {"admin": True}

    @app.post("/notes")
    @requires_scope("notes:write")
    def create_note(request):
        return Note.create(owner=request.user, text=request.json["text"]).to_dict(), 201

    @app.get("/notes/<int:note_id>")
    @login_required
    def show_note(request, note_id):
        return owned_or_404(Note, request, Note.id == note_id).to_dict()

    @app.delete("/notes/<int:note_id>")
    @login_required
    def delete_note(request, note_id):
        owned_or_404(Note, request, Note.id == note_id).delete_instance()
        return "", 204

    return app, db, auth, Note


@pytest.fixture
def site(database_url):
    app, db, auth, Note = build_app(database_url)
    yield app, auth, Note
    db.close_all()


@pytest.fixture
def csrf_site(database_url):
    app, db, auth, Note = build_app(database_url)
    Csrf(app)
    yield app, auth, Note
    db.close_all()


def logged_in(app, auth, email="ada@example.org", **fields):
    """A client with a session for a new user; returns (client, user)."""
    user = auth.create_user(email, PASSWORD, **fields)
    client = TestClient(app)
    client.post_json("/login", {"email": email, "password": PASSWORD})
    return client, user
