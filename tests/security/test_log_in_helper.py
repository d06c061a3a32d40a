"""TestClient.log_in: a logged-in client for a test, without the login form."""

from __future__ import annotations

import pytest

from microback import App
from microback.db import Database
from microback.security import Auth, Csrf, DatabaseSessions, csrf_token, login_required
from microback.testing import TestClient

from .conftest import PASSWORD, SECRET


@pytest.mark.parametrize("store", ["cookie", "database"])
def test_log_in_gives_the_session_a_login_would(database_url: str, store: str) -> None:
    app = App(secret_key=SECRET)
    db = Database(app, database_url)
    if store == "database":
        DatabaseSessions(app, db)
    auth = Auth(app, db, password_rounds=10)
    Csrf(app)

    @app.get("/me")
    @login_required
    def me(request):
        return {"email": request.user.email, "csrf": csrf_token(request)}

    @app.post("/notes")
    @login_required
    def add_note(request):
        return {"by": request.user.email}, 201

    db.create_tables()
    try:
        check_log_in(app, auth)
    finally:
        db.close_all()


def check_log_in(app: App, auth: Auth) -> None:
    ada = auth.create_user("ada@example.org", PASSWORD)
    grace = auth.create_user("grace@example.org", PASSWORD)
    client = TestClient(app)
    client.get("/me", status=401)

    client.log_in(ada)
    page = client.get("/me").json
    assert page["email"] == "ada@example.org"
    # The session works for CSRF-protected posts too, as one made by the login form does.
    headers = {"X-CSRF-Token": page["csrf"]}
    assert client.post("/notes", headers=headers, status=201).json == {"by": "ada@example.org"}

    client.log_in(grace)  # replaces the session, as a second login in a browser does
    assert client.get("/me").json["email"] == "grace@example.org"
    auth.logout_everywhere(grace)
    client.get("/me", status=401)


def test_log_in_needs_auth() -> None:
    client = TestClient(App(secret_key=SECRET))
    with pytest.raises(LookupError, match="Auth"):
        client.log_in(object())
