"""API tokens (Bearer) and one-time signed links (password reset, e-mail verification)."""

import datetime
import time

from microback import App
from microback.db import Database
from microback.security import Auth, Csrf
from microback.testing import TestClient

from .conftest import PASSWORD, SECRET, build_app, logged_in


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def test_token_authenticates_and_is_stored_only_as_a_hash(site):
    app, auth, _ = site
    user = auth.create_user("ada@example.org", PASSWORD)
    new = auth.tokens.create(user, "laptop", scopes=["profile"])
    assert new.secret.startswith("mbt_") and len(new.secret) > 40
    client = TestClient(app)
    assert client.get("/me", headers=bearer(new.secret)).json["id"] == user.id
    row = auth.Token.get_by_id(new.token.id)
    assert new.secret not in str(row.__data__.values())
    assert "token_hash" not in row.to_dict()


def test_bad_expired_and_revoked_tokens_are_401(site):
    app, auth, _ = site
    user = auth.create_user("ada@example.org", PASSWORD)
    client = TestClient(app)
    for secret in ("mbt_made-up", "not-even-ours", ""):
        response = client.get("/me", headers=bearer(secret), status=401)
        assert response.json["detail"] == "the token is invalid, expired or revoked"
    expired = auth.tokens.create(
        user, "old", scopes=["profile"], lifetime=datetime.timedelta(seconds=1)
    )
    revoked = auth.tokens.create(user, "lost", scopes=["profile"])
    assert client.get("/me", headers=bearer(revoked.secret)).status_int == 200
    auth.tokens.revoke(revoked.token)
    client.get("/me", headers=bearer(revoked.secret), status=401)
    time.sleep(1.1)
    client.get("/me", headers=bearer(expired.secret), status=401)


def test_scopes_limit_tokens_not_sessions(site):
    app, auth, _ = site
    session_client, user = logged_in(app, auth)
    reader = auth.tokens.create(user, "reader", scopes=["notes:read"])
    writer = auth.tokens.create(user, "writer", scopes=["notes:write", "notes:read"])
    client = TestClient(app)
    response = client.post_json("/notes", {"text": "x"}, headers=bearer(reader.secret), status=403)
    assert response.json["detail"] == "the token lacks the scope 'notes:write'"
    client.post_json("/notes", {"text": "x"}, headers=bearer(writer.secret), status=201)
    session_client.post_json("/notes", {"text": "y"}, status=201)


def test_tokens_of_inactive_users_do_not_work(site):
    app, auth, _ = site
    user = auth.create_user("ada@example.org", PASSWORD)
    new = auth.tokens.create(user, "laptop", scopes=["profile"])
    user.is_active = False
    user.save()
    TestClient(app).get("/me", headers=bearer(new.secret), status=401)


def test_bearer_requests_need_no_csrf_token_but_cookies_do(database_url):
    app, db, auth, _ = build_app(database_url)
    Csrf(app)
    try:
        client, user = logged_in(app, auth)
        new = auth.tokens.create(user, "cli", scopes=["notes:write"])
        response = client.post_json("/notes", {"text": "x"}, status=403)
        assert "CSRF token missing" in response.json["detail"]
        TestClient(app).post_json("/notes", {"text": "x"}, headers=bearer(new.secret), status=201)
    finally:
        db.close_all()


def test_password_reset_link_works_once(site):
    app, auth, _ = site
    user = auth.create_user("ada@example.org", PASSWORD)
    token = auth.make_link_token(user, "password-reset")
    assert auth.reset_password(token, "a brand new passphrase").id == user.id
    assert auth.reset_password(token, "another attempt") is None
    client = TestClient(app)
    client.post_json("/login", {"email": user.email, "password": "a brand new passphrase"})


def test_link_tokens_are_bound_to_purpose_expiry_and_signature(site):
    _, auth, _ = site
    user = auth.create_user("ada@example.org", PASSWORD)
    verify = auth.make_link_token(user, "verify-email")
    assert auth.reset_password(verify, "hijack") is None  # wrong purpose
    # Change a character inside the signature (the last one carries unused bits).
    flipped = "A" if verify[-10] != "A" else "B"
    tampered = verify[:-10] + flipped + verify[-9:]
    assert auth.check_link_token(tampered, "verify-email", max_age=60) is None
    assert auth.check_link_token("garbage", "verify-email", max_age=60) is None
    time.sleep(2.1)  # signatures carry whole seconds: 2 s old is past a max_age of 1
    assert auth.check_link_token(verify, "verify-email", max_age=1) is None
    assert auth.verify_email(verify).email_verified is True
    assert auth.verify_email(verify) is None  # used


def test_a_reset_link_mailed_before_a_key_rotation_works_after_it(database_url):
    _, db, auth, _ = build_app(database_url)
    rotated_db = None
    try:
        user = auth.create_user("ada@example.org", PASSWORD)
        token = auth.make_link_token(user, "password-reset")
        # The same database, served by an instance on the new key that keeps the old one.
        rotated = App(
            secret_key="a-new-key-from-the-secrets-store-0123456789", previous_secret_keys=[SECRET]
        )
        rotated_db = Database(rotated, database_url)
        rotated_auth = Auth(rotated, rotated_db, password_rounds=10)
        without_old = App(secret_key="a-new-key-from-the-secrets-store-0123456789")
        without_old_auth = Auth(without_old, rotated_db, password_rounds=10)

        assert without_old_auth.check_link_token(token, "password-reset", max_age=60) is None
        assert rotated_auth.reset_password(token, "a brand new passphrase").id == user.id
        assert rotated_auth.reset_password(token, "again") is None  # used, as before
        fresh = rotated_auth.make_link_token(user, "password-reset")  # signed with the new key
        assert auth.check_link_token(fresh, "password-reset", max_age=60) is None
    finally:
        db.close_all()
        if rotated_db is not None:
            rotated_db.close_all()


def test_a_password_change_voids_open_reset_links(site):
    _, auth, _ = site
    user = auth.create_user("ada@example.org", PASSWORD)
    token = auth.make_link_token(user, "password-reset")
    auth.set_password(user, "changed by the owner")
    assert auth.reset_password(token, "attacker's choice") is None


def test_tokens_reach_only_routes_that_declare_their_scope(site):
    app, auth, Note = site
    user = auth.create_user("ada@example.org", PASSWORD)
    note = Note.create(owner=user, text="keep me")
    reader = auth.tokens.create(user, "reader", scopes=["notes:read"])
    client = TestClient(app)
    # /notes/<id> DELETE and GET are @login_required only: sessions, not tokens.
    refused = client.delete(f"/notes/{note.id}", headers=bearer(reader.secret), status=403)
    assert refused.json["detail"] == ("API tokens cannot call this route: it declares no scope")
    client.get(f"/notes/{note.id}", headers=bearer(reader.secret), status=403)
    assert Note.select().count() == 1


def test_scope_marks_survive_any_decorator_order(site):
    from microback.security import login_required, requires_scope

    app, auth, _ = site

    @app.get("/inner")
    @login_required
    @requires_scope("a")
    def inner(request):
        return {"ok": True}

    @app.get("/outer")
    @requires_scope("a")
    @login_required
    def outer(request):
        return {"ok": True}

    user = auth.create_user("ada@example.org", PASSWORD)
    token = auth.tokens.create(user, "t", scopes=["a"])
    client = TestClient(app)
    assert client.get("/inner", headers=bearer(token.secret)).json == {"ok": True}
    assert client.get("/outer", headers=bearer(token.secret)).json == {"ok": True}
