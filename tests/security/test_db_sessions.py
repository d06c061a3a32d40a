"""Server-side sessions: revocable, listable, never adopted from the client."""

import pytest

from microback import App, abort
from microback.db import Database
from microback.security import Auth, DatabaseSessions, login_required
from microback.testing import TestClient

from .conftest import PASSWORD, SECRET


@pytest.fixture
def stored(database_url):
    app = App(secret_key=SECRET)
    db = Database(app, database_url)
    sessions = DatabaseSessions(app, db)
    auth = Auth(app, db, password_rounds=10)
    db.create_tables()

    @app.post("/login")
    def login(request):
        user = auth.authenticate(request, request.json["email"], request.json["password"])
        if user is None:
            abort(401)
        auth.login(request, user)
        return {}

    @app.post("/logout")
    def logout(request):
        auth.logout(request)
        return {}

    @app.get("/me")
    @login_required
    def me(request):
        return {"id": request.user.id}

    @app.get("/visit")
    def visit(request):
        return {"seen": request.session.get("seen", 0)}

    @app.post("/cart")
    def cart(request):
        request.session["cart"] = request.session.get("cart", 0) + 1
        return {"cart": request.session["cart"]}

    @app.get("/devices")
    @login_required
    def devices(request):
        return [{"id": s.id, "agent": s.user_agent} for s in sessions.for_user(request.user.id)]

    @app.delete("/devices/<int:session_id>")
    @login_required
    def end_device(request, session_id):
        if not sessions.revoke(request.user.id, session_id):
            abort(404)
        return "", 204

    auth.create_user("ada@example.org", PASSWORD)
    yield app, auth, sessions
    db.close_all()


def login(app, agent="laptop"):
    client = TestClient(app, extra_environ={"HTTP_USER_AGENT": agent})
    client.post_json("/login", {"email": "ada@example.org", "password": PASSWORD})
    return client


def test_anonymous_requests_create_no_rows(stored):
    app, _, sessions = stored
    client = TestClient(app)
    client.get("/visit")
    client.get("/me", status=401)
    assert sessions.model.select().count() == 0
    assert "session" not in client.cookies


def test_the_cookie_holds_only_an_id_and_the_table_only_its_hash(stored):
    app, _, sessions = stored
    client = TestClient(app)
    client.post("/cart")
    cookie = client.cookies["session"]
    [row] = sessions.model.select()
    assert cookie not in row.key_hash and "cart" not in cookie
    assert client.post("/cart").json == {"cart": 2}


def test_login_issues_a_new_id_and_logout_deletes_the_row(stored):
    app, _, sessions = stored
    client = TestClient(app)
    client.post("/cart")
    before = client.cookies["session"]
    client.post_json("/login", {"email": "ada@example.org", "password": PASSWORD})
    after = client.cookies["session"]
    assert after != before
    assert sessions.model.select().count() == 1
    replay = TestClient(app)
    replay.set_cookie("session", before)
    replay.get("/me", status=401)
    client.post("/logout")
    assert sessions.model.select().count() == 0
    replay.set_cookie("session", after)
    replay.get("/me", status=401)


def test_an_id_the_server_did_not_issue_is_never_adopted(stored):
    app, _, _sessions = stored
    client = TestClient(app)
    planted = "attacker-chosen-identifier-0123456789"
    client.set_cookie("session", planted)
    client.post("/cart")
    assert client.cookies["session"] != planted
    client.post_json("/login", {"email": "ada@example.org", "password": PASSWORD})
    assert client.cookies["session"] != planted


def test_users_list_and_end_their_sessions(stored):
    app, _, _ = stored
    laptop, phone = login(app, "laptop"), login(app, "phone")
    devices = laptop.get("/devices").json
    assert sorted(d["agent"] for d in devices) == ["laptop", "phone"]
    phone_id = next(d["id"] for d in devices if d["agent"] == "phone")
    laptop.delete(f"/devices/{phone_id}")
    phone.get("/me", status=401)
    assert laptop.get("/me").status_int == 200


def test_logout_everywhere_deletes_every_row(stored):
    app, auth, sessions = stored
    laptop, phone = login(app, "laptop"), login(app, "phone")
    auth.logout_everywhere(auth.find_user("ada@example.org"))
    assert sessions.model.select().count() == 0
    laptop.get("/me", status=401)
    phone.get("/me", status=401)
