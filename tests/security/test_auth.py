"""Users, login, sessions bound to users, roles, ownership: on every selected database."""

import re

import pytest

from microback.security import ANONYMOUS
from microback.security.passwords import hash_password, verify_password
from microback.testing import TestClient

from .conftest import PASSWORD, build_app, logged_in


def test_login_sets_request_user_and_logout_ends_it(site):
    app, auth, _ = site
    client, user = logged_in(app, auth)
    me = client.get("/me").json
    assert me["email"] == "ada@example.org" and me["id"] == user.id
    client.post("/logout")
    assert client.get("/me", status=401).json["status"] == 401


def test_password_hash_and_epoch_are_never_serialized(site):
    app, auth, _ = site
    client, _ = logged_in(app, auth)
    me = client.get("/me").json
    assert "password_hash" not in me and "session_epoch" not in me
    assert "bcrypt" not in client.get("/me").text


def test_email_is_unique_in_any_case(site):
    _app, auth, _ = site
    auth.create_user("Ada@Example.org", PASSWORD)
    assert auth.find_user("ADA@example.ORG").email == "ada@example.org"
    with pytest.raises(Exception) as caught:
        auth.create_user("ada@EXAMPLE.org", "other password")
    assert caught.value.code == 409
    assert "email" in caught.value.description


def test_wrong_password_and_unknown_account_look_the_same(site):
    app, auth, _ = site
    auth.create_user("ada@example.org", PASSWORD)
    client = TestClient(app)
    wrong = client.post_json(
        "/login", {"email": "ada@example.org", "password": "nope"}, status=401
    )
    unknown = client.post_json("/login", {"email": "bob@example.org", "password": "x"}, status=401)
    assert wrong.json == unknown.json
    assert wrong.headers.get("Set-Cookie") is None and unknown.headers.get("Set-Cookie") is None


@pytest.mark.parametrize(
    "email",
    ["' OR '1'='1", "ada@example.org'; DROP TABLE auth_user; --", 'x" OR 1=1 --', "%", "_"],
)
def test_sql_metacharacters_in_the_email_match_nothing(site, email):
    app, auth, _ = site
    auth.create_user("ada@example.org", PASSWORD)
    client = TestClient(app)
    client.post_json("/login", {"email": email, "password": PASSWORD}, status=401)
    assert auth.User.select().count() == 1


def test_inactive_users_cannot_log_in_and_lose_their_sessions(site):
    app, auth, _ = site
    client, user = logged_in(app, auth)
    user.is_active = False
    user.save()
    client.get("/me", status=401)
    client.post_json("/login", {"email": user.email, "password": PASSWORD}, status=401)


def test_login_rotates_the_csrf_secret(csrf_site):
    # Session fixation: a session prepared by an attacker must be worthless after login.
    from microback.security import csrf_token

    app, auth, _ = csrf_site

    @app.get("/token")
    def token(request):
        return {"token": csrf_token(request), "secret": request.session.get("_csrf")}

    auth.create_user("ada@example.org", PASSWORD)
    client = TestClient(app)
    before = client.get("/token").json
    client.post_json(
        "/login",
        {"email": "ada@example.org", "password": PASSWORD},
        headers={"X-CSRF-Token": before["token"]},
    )
    after = client.get("/token").json
    assert after["secret"] != before["secret"]
    response = client.post("/logout", headers={"X-CSRF-Token": before["token"]}, status=403)
    assert "CSRF token incorrect" in response.json["detail"]
    client.post("/logout", headers={"X-CSRF-Token": after["token"]})


def test_a_cookie_the_server_did_not_sign_is_not_adopted(site):
    app, auth, _ = site
    auth.create_user("ada@example.org", PASSWORD)
    client = TestClient(app)
    forged = "eyJfdWlkIjoxLCJfZXBvY2giOjB9.aaaa.bbbb"  # {"_uid":1,"_epoch":0}, unsigned
    client.set_cookie("session", forged)
    client.get("/me", status=401)


def test_logout_everywhere_invalidates_every_copy_of_the_cookie(site):
    app, auth, _ = site
    laptop, user = logged_in(app, auth)
    phone = TestClient(app)
    phone.post_json("/login", {"email": user.email, "password": PASSWORD})
    stolen = laptop.cookies["session"]
    auth.logout_everywhere(user)
    laptop.get("/me", status=401)
    phone.get("/me", status=401)
    replay = TestClient(app)
    replay.set_cookie("session", stolen)
    replay.get("/me", status=401)


def test_a_cookie_copied_before_logout_is_refused_after_it(database_url):
    # The default Auth keeps the session in a signed cookie; log-out must still end every copy.
    app, db, auth, _ = build_app(database_url, login_url="/login-page")
    try:
        client, user = logged_in(app, auth)
        copied = client.cookies["session"]
        client.post("/logout")
        for replay in (TestClient(app), TestClient(app)):  # twice: the refusal is lasting
            replay.set_cookie("session", copied)
            assert replay.get("/me", status=401).json["status"] == 401
            page = replay.get("/me", headers={"Accept": "text/html"}, status=303)
            assert page.headers["Location"].endswith("/login-page?next=/me")
        # Logging out again with the copy is harmless, and a new log-in works.
        replay.post("/logout")
        fresh = TestClient(app)
        fresh.post_json("/login", {"email": user.email, "password": PASSWORD})
        assert fresh.get("/me").json["id"] == user.id
    finally:
        db.close_all()


def test_logging_out_one_browser_leaves_the_others_signed_in(site):
    app, auth, _ = site
    laptop, user = logged_in(app, auth)
    phone = TestClient(app)
    phone.post_json("/login", {"email": user.email, "password": PASSWORD})
    laptop.post("/logout")
    laptop.get("/me", status=401)
    assert phone.get("/me").json["id"] == user.id


def test_a_cookie_without_a_session_id_is_not_signed_in(site):
    # Cookies issued before log-outs were recorded carry no session id: they cannot be
    # revoked, so they are not trusted (their users log in once more).
    app, auth, _ = site
    user = auth.create_user("ada@example.org", PASSWORD)
    legacy = auth.sessions.dumps({"_uid": user.id, "_epoch": user.session_epoch})
    client = TestClient(app)
    client.set_cookie("session", legacy)
    client.get("/me", status=401)


def test_password_change_invalidates_old_cookies(site):
    app, auth, _ = site
    client, user = logged_in(app, auth)
    stolen = client.cookies["session"]
    auth.set_password(user, "a new and better passphrase")
    replay = TestClient(app)
    replay.set_cookie("session", stolen)
    replay.get("/me", status=401)
    fresh = TestClient(app)
    fresh.post_json("/login", {"email": user.email, "password": PASSWORD}, status=401)
    fresh.post_json("/login", {"email": user.email, "password": "a new and better passphrase"})
    assert fresh.get("/me").json["id"] == user.id


def test_roles_are_checked_on_every_request(site):
    app, auth, _ = site
    client, user = logged_in(app, auth, roles="admin")
    assert client.get("/admin").json == {"admin": True}
    user.roles = ""
    user.save()
    response = client.get("/admin", status=403)
    assert response.json["detail"] == "this needs the role 'admin'"
    TestClient(app).get("/admin", status=401)


def test_login_required_answers_401_for_apis_and_redirects_browsers(database_url):
    app, db, _auth, _ = build_app(database_url, login_url="/login-page")
    try:
        client = TestClient(app)
        api = client.get("/me", status=401)
        assert api.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert "log in" in api.json["detail"]
        browser = client.get("/me?tab=1", headers={"Accept": "text/html"}, status=303)
        assert browser.headers["Location"].endswith("/login-page?next=/me%3Ftab%3D1")
    finally:
        db.close_all()


def test_other_users_objects_are_404(site):
    app, auth, Note = site
    alice, alice_user = logged_in(app, auth, "alice@example.org")
    bob, _ = logged_in(app, auth, "bob@example.org")
    note = Note.create(owner=alice_user, text="alice's secret")
    assert alice.get(f"/notes/{note.id}").json["text"] == "alice's secret"
    missing = bob.get(f"/notes/{note.id + 1000}", status=404).json
    theirs = bob.get(f"/notes/{note.id}", status=404).json
    assert theirs == missing
    bob.delete(f"/notes/{note.id}", status=404)
    assert Note.select().count() == 1


def test_old_hashes_are_upgraded_on_login(site):
    app, auth, _ = site
    user = auth.create_user("ada@example.org", PASSWORD)
    user.password_hash = hash_password(PASSWORD, rounds=11)
    user.save()
    TestClient(app).post_json("/login", {"email": user.email, "password": PASSWORD})
    stored = auth.User.get_by_id(user.id).password_hash
    assert re.match(r"bcrypt_sha256\$\$2b\$10\$", stored)
    assert verify_password(PASSWORD, stored, rounds=10)


def test_anonymous_user(site):
    app, _auth, _ = site

    @app.get("/who")
    def who(request):
        return {"anonymous": request.user is ANONYMOUS, "admin": request.user.has_role("admin")}

    assert TestClient(app).get("/who").json == {"anonymous": True, "admin": False}


@pytest.mark.parametrize(
    "body", [{"email": 5, "password": "x"}, {"email": "a@b.c", "password": []}]
)
def test_credentials_of_the_wrong_type_are_a_400(site, body):
    app, _, _ = site
    response = TestClient(app).post_json("/login", body, status=400)
    assert response.json["detail"] == ("the e-mail address and the password must be strings")
