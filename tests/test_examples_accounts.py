"""The accounts example: sign-up, login, notes behind login with CSRF forms, API tokens.

Runs on each backend selected by MICROBACK_TEST_DATABASES. The bad input of issue 4 that an
app can meet is here: mass assignment, other users' notes, CSRF, dead tokens, long passwords,
a foreign Host.
"""

from __future__ import annotations

import datetime
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import bcrypt
import pytest

from microback.testing import TestClient, database_servers, database_url, fresh_database

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "accounts" / "app.py"
PASSWORD = "correct horse battery staple"
BROWSER = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The example's module, imported once; each test moves its db to a fresh database."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MICROBACK_SECRET_KEY", "accounts-example-secret-0123456789abcdef")
        patch.setenv("ACCOUNTS_PASSWORD_ROUNDS", "10")  # the minimum: the suite stays fast
        patch.setenv("DATABASE_URL", f"sqlite:///{tmp_path_factory.mktemp('import')}/a.db")
        spec = importlib.util.spec_from_file_location("example_accounts", EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    yield module
    module.db.close_all()


@pytest.fixture
def accounts_db(accounts: ModuleType, database_url: str) -> Iterator[ModuleType]:
    with fresh_database(accounts.db, database_url):
        yield accounts


def browser(accounts: ModuleType) -> TestClient:
    return TestClient(accounts.app, extra_environ=BROWSER)


def form_token(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.text).group(1)


def browser_sign_up(client: TestClient, email: str, password: str = PASSWORD, **extra):
    token = form_token(client.get("/signup"))
    data = {"csrf_token": token, "email": email, "password": password, **extra}
    return client.post("/signup", data, expect_errors=True)


def signed_up(accounts: ModuleType, email: str = "ada@example.org") -> TestClient:
    client = browser(accounts)
    assert browser_sign_up(client, email).status_int == 303
    return client


def api_sign_up(accounts: ModuleType, email: str, password: str = PASSWORD, **extra):
    body = {"email": email, "password": password, **extra}
    return TestClient(accounts.app).post_json("/api/signup", body, expect_errors=True)


def new_token(accounts: ModuleType, email: str, *scopes: str, password: str = PASSWORD) -> str:
    body = {"email": email, "password": password, "name": "test", "scopes": list(scopes)}
    return TestClient(accounts.app).post_json("/api/tokens", body, status=201).json["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def user_with_token(accounts: ModuleType, email: str, *scopes: str) -> tuple[int, str]:
    user_id = api_sign_up(accounts, email).json["id"]
    return user_id, new_token(accounts, email, *(scopes or ("notes:read", "notes:write")))


# --- the browser side ---------------------------------------------------------------------------


def test_sign_up_write_notes_and_log_out_in_a_browser(accounts_db: ModuleType) -> None:
    client = browser(accounts_db)
    assert browser_sign_up(client, "ada@example.org").headers["Location"].endswith("/notes")
    page = client.get("/notes")
    assert "Notes of ada@example.org" in page.text

    client.post("/notes", {"csrf_token": form_token(page), "text": "buy <milk>"}, status=303)
    page = client.get("/notes")
    assert "buy &lt;milk&gt;" in page.text and "<milk>" not in page.text  # escaped
    [note_id] = re.findall(r'action="/notes/(\d+)"', page.text)
    client.post(f"/notes/{note_id}", {"csrf_token": form_token(page), "text": "eggs"}, status=303)
    page = client.get("/notes")
    assert "eggs" in page.text
    client.post(f"/notes/{note_id}/delete", {"csrf_token": form_token(page)}, status=303)
    page = client.get("/notes")
    assert "eggs" not in page.text

    client.post("/logout", {"csrf_token": form_token(page)}, status=303)
    assert client.get("/notes", status=303).headers["Location"].endswith("/login?next=/notes")


def test_the_pages_flash_what_happened_and_load_their_stylesheet(accounts_db: ModuleType) -> None:
    client = signed_up(accounts_db)
    page = client.get("/notes")

    added = client.post("/notes", {"csrf_token": form_token(page), "text": "x"}).follow()
    assert '<p class="flash success">Note added.</p>' in added.text
    assert "Note added." not in client.get("/notes").text  # shown once
    logged_out = client.post("/logout", {"csrf_token": form_token(added)}).follow()
    assert '<p class="flash info">You are logged out.</p>' in logged_out.text
    [stylesheet] = re.findall(r'<link rel="stylesheet" href="([^"]+)">', logged_out.text)
    css = client.get(stylesheet)
    assert css.content_type == "text/css"
    assert b".error" in css.body
    TestClient(accounts_db.app).get("/notes", status=401)  # an API client is told, not sent


def test_login_returns_to_next_but_never_to_another_site(accounts_db: ModuleType) -> None:
    signed_up(accounts_db)
    for target, landing in [
        ("/notes?x=1", "/notes?x=1"),
        ("//evil.example/", "/notes"),
        ("https://evil.example/", "/notes"),
        ("/\\evil.example", "/notes"),
    ]:
        client = browser(accounts_db)
        page = client.get("/login", {"next": target})
        data = {"csrf_token": form_token(page), "email": "ada@example.org", "password": PASSWORD}
        response = client.post("/login", {**data, "next": target}, status=303)
        assert response.headers["Location"] == landing


def test_wrong_password_and_unknown_address_get_the_same_answer(accounts_db: ModuleType) -> None:
    signed_up(accounts_db)
    client = browser(accounts_db)
    token = form_token(client.get("/login"))
    for email, password in [("ada@example.org", "wrong password"), ("bob@example.org", PASSWORD)]:
        data = {"csrf_token": token, "email": email, "password": password}
        response = client.post("/login", data, status=400)
        assert "wrong e-mail address or password" in response.text
        body = {"email": email, "password": password, "name": "x", "scopes": ["notes:read"]}
        answer = TestClient(accounts_db.app).post_json("/api/tokens", body, status=401)
        assert answer.json["detail"] == "wrong e-mail address or password"


def test_a_cookie_copied_before_logout_is_refused_after_it(accounts_db: ModuleType) -> None:
    client = signed_up(accounts_db)
    page = client.get("/notes")
    copied = client.cookies["session"]
    client.post("/logout", {"csrf_token": form_token(page)}, status=303)

    replay = browser(accounts_db)
    replay.set_cookie("session", copied)
    assert replay.get("/notes", status=303).headers["Location"].endswith("/login?next=/notes")
    api = TestClient(accounts_db.app)
    api.set_cookie("session", copied)
    api.get("/api/notes", status=401)
    # The old CSRF token and the copied cookie together cannot post a note either.
    replay.post("/notes", {"csrf_token": form_token(page), "text": "x"}, status=303)
    assert accounts_db.Note.select().count() == 0


def test_logout_everywhere_ends_every_copy_of_the_session(accounts_db: ModuleType) -> None:
    laptop = signed_up(accounts_db)
    phone = browser(accounts_db)
    token = form_token(phone.get("/login"))
    login = {"csrf_token": token, "email": "ada@example.org", "password": PASSWORD}
    phone.post("/login", login, status=303)
    stolen = phone.cookies["session"]

    laptop.post("/logout-everywhere", {"csrf_token": form_token(laptop.get("/notes"))})
    phone.get("/notes", status=303)
    replay = browser(accounts_db)
    replay.set_cookie("session", stolen)
    replay.get("/notes", status=303)


# --- CSRF on the forms --------------------------------------------------------------------------


def test_note_forms_need_this_sessions_csrf_token(accounts_db: ModuleType) -> None:
    client = signed_up(accounts_db)
    other = signed_up(accounts_db, "bob@example.org")
    others_token = form_token(other.get("/notes"))
    Note = accounts_db.Note

    def refused(data: dict[str, str], **headers: str) -> str:
        response = client.post("/notes", {"text": "x", **data}, headers=headers, status=403)
        return response.text

    assert "CSRF token missing" in refused({})
    assert "CSRF token incorrect" in refused({"csrf_token": "made-up"})
    assert "CSRF token incorrect" in refused({"csrf_token": others_token})
    good = form_token(client.get("/notes"))
    evil = refused({"csrf_token": good}, Origin="https://evil.example")
    assert "Origin https://evil.example is not trusted" in evil
    assert "Origin null refused" in refused({"csrf_token": good}, Origin="null")
    assert Note.select().count() == 0
    client.post("/notes", {"text": "x", "csrf_token": good}, status=303)
    assert Note.select().count() == 1


def test_a_session_planted_before_login_is_worthless_after_it(accounts_db: ModuleType) -> None:
    signed_up(accounts_db)
    victim = browser(accounts_db)
    planted_token = form_token(victim.get("/login"))  # the attacker got this page, and cookie
    planted_cookie = victim.cookies["session"]
    login = {"csrf_token": planted_token, "email": "ada@example.org", "password": PASSWORD}
    victim.post("/login", login, status=303)

    attacker = browser(accounts_db)
    attacker.set_cookie("session", planted_cookie)
    attacker.get("/notes", status=303)  # still anonymous
    response = victim.post("/notes", {"text": "x", "csrf_token": planted_token}, status=403)
    assert "CSRF token incorrect" in response.text


# --- mass assignment and ownership ------------------------------------------------------------


def test_sign_up_sets_only_the_address_and_password(accounts_db: ModuleType) -> None:
    sneaky = {
        "is_admin": True,
        "is_active": False,
        "roles": "admin",
        "email_verified": True,
        "session_epoch": 7,
        "id": 999,
    }
    refused = api_sign_up(accounts_db, "ada@example.org", **sneaky)
    assert refused.status_int == 422  # the JSON API refuses the fields it does not declare
    assert {tuple(e["path"]) for e in refused.json["errors"]} == {(k,) for k in sneaky}
    assert {e["code"] for e in refused.json["errors"]} == {"unknown_field"}
    assert accounts_db.auth.User.select().count() == 0
    created = api_sign_up(accounts_db, "ada@example.org")
    assert created.json == {"id": created.json["id"], "email": "ada@example.org"}
    client = browser(accounts_db)
    browser_sign_up(client, "bob@example.org", **{k: str(v) for k, v in sneaky.items()})
    for user in accounts_db.auth.User.select():
        assert (user.roles, user.is_active, user.email_verified) == ("", True, False)
        assert user.session_epoch == 0 and user.id != 999


def test_a_note_cannot_be_given_to_another_owner(accounts_db: ModuleType) -> None:
    alice_id, alice = user_with_token(accounts_db, "alice@example.org")
    bob_id, _ = user_with_token(accounts_db, "bob@example.org")
    client = TestClient(accounts_db.app)
    sneaky = {"text": "mine", "owner": bob_id, "id": 50}
    refused = client.post_json("/api/notes", sneaky, headers=bearer(alice), status=422)
    assert [e["path"] for e in refused.json["errors"]] == [["owner"], ["id"]]
    created = client.post_json("/api/notes", {"text": "mine"}, headers=bearer(alice))
    assert created.json["owner"] == alice_id and created.json["id"] != 50
    path = f"/api/notes/{created.json['id']}"
    sneaky = {"text": "still mine", "owner": bob_id}
    client.put_json(path, sneaky, headers=bearer(alice), status=422)
    updated = client.put_json(path, {"text": "still mine"}, headers=bearer(alice))
    assert updated.json == {"id": created.json["id"], "owner": alice_id, "text": "still mine"}
    form = browser(accounts_db)
    browser_sign_up(form, "carol@example.org")
    token = form_token(form.get("/notes"))
    form.post("/notes", {"csrf_token": token, "text": "x", "owner": str(bob_id)}, status=303)
    carol_id = accounts_db.auth.find_user("carol@example.org").id
    assert {note.owner_id for note in accounts_db.Note.select()} == {alice_id, carol_id}


def test_another_users_note_is_404_like_a_missing_one(accounts_db: ModuleType) -> None:
    _, alice = user_with_token(accounts_db, "alice@example.org")
    _, bob = user_with_token(accounts_db, "bob@example.org")
    client = TestClient(accounts_db.app)
    note = client.post_json("/api/notes", {"text": "alice's"}, headers=bearer(alice)).json
    path, missing = f"/api/notes/{note['id']}", f"/api/notes/{note['id'] + 100}"
    expected = client.get(missing, headers=bearer(bob), status=404).json
    assert client.get(path, headers=bearer(bob), status=404).json == expected
    client.put_json(path, {"text": "bob's now"}, headers=bearer(bob), status=404)
    client.delete(path, headers=bearer(bob), status=404)

    bob_browser = signed_up(accounts_db, "bob2@example.org")
    token = form_token(bob_browser.get("/notes"))
    bob_browser.post(f"/notes/{note['id']}", {"csrf_token": token, "text": "x"}, status=404)
    bob_browser.post(f"/notes/{note['id']}/delete", {"csrf_token": token}, status=404)
    assert client.get(path, headers=bearer(alice)).json["text"] == "alice's"


# --- API tokens ---------------------------------------------------------------------------------


def test_a_token_is_shown_once_listed_without_secret_and_revoked(accounts_db: ModuleType) -> None:
    api_sign_up(accounts_db, "ada@example.org")
    manager = new_token(accounts_db, "ada@example.org", "account")
    reader = new_token(accounts_db, "ada@example.org", "notes:read")
    assert reader.startswith("mbt_")
    client = TestClient(accounts_db.app)
    listed = client.get("/api/tokens", headers=bearer(manager)).json
    assert [(t["name"], t["scopes"]) for t in listed] == [
        ("test", "account"),
        ("test", "notes:read"),
    ]
    assert all(set(t) == {"id", "name", "scopes", "created_at", "expires_at"} for t in listed)
    assert reader not in client.get("/api/tokens", headers=bearer(manager)).text

    assert client.get("/api/notes", headers=bearer(reader)).json == []
    client.delete(f"/api/tokens/{listed[1]['id']}", headers=bearer(manager), status=204)
    response = client.get("/api/notes", headers=bearer(reader), status=401)
    assert response.json["detail"] == "the token is invalid, expired or revoked"
    client.delete(f"/api/tokens/{listed[1]['id']}", headers=bearer(manager), status=404)
    assert len(client.get("/api/tokens", headers=bearer(manager)).json) == 1


def test_an_expired_token_is_refused(accounts_db: ModuleType) -> None:
    _, token = user_with_token(accounts_db, "ada@example.org")
    client = TestClient(accounts_db.app)
    client.get("/api/notes", headers=bearer(token))
    Token = accounts_db.auth.Token
    Token.update(expires_at=datetime.datetime(2000, 1, 1)).execute()
    client.get("/api/notes", headers=bearer(token), status=401)


def test_a_token_does_only_what_its_scopes_allow(accounts_db: ModuleType) -> None:
    _, reader = user_with_token(accounts_db, "ada@example.org", "notes:read")
    client = TestClient(accounts_db.app)
    refused = client.post_json("/api/notes", {"text": "x"}, headers=bearer(reader), status=403)
    assert refused.json["detail"] == "the token lacks the scope 'notes:write'"
    client.post("/notes", {"text": "x"}, headers=bearer(reader), status=403)  # HTML route too
    client.get("/api/tokens", headers=bearer(reader), status=403)
    client.post("/logout-everywhere", headers=bearer(reader), status=403)
    assert accounts_db.Note.select().count() == 0


TOKEN_ASKED = {"email": "a@b", "password": "x", "name": "x", "scopes": ["account"]}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ([], [([], "type")]),
        (
            {"email": "ada@example.org", "password": PASSWORD},
            [(["name"], "missing"), (["scopes"], "missing")],
        ),
        ({**TOKEN_ASKED, "email": 5}, [(["email"], "type")]),
        ({**TOKEN_ASKED, "name": ["x"]}, [(["name"], "type")]),
        (
            {**TOKEN_ASKED, "scopes": ["admin", "account", "root"]},
            [(["scopes", 0], "enum"), (["scopes", 2], "enum")],
        ),
        ({**TOKEN_ASKED, "scopes": "notes:read"}, [(["scopes"], "type")]),
        ({**TOKEN_ASKED, "scopes": [{}]}, [(["scopes", 0], "type")]),
        ({**TOKEN_ASKED, "scopes": []}, [(["scopes"], "length")]),
        ({**TOKEN_ASKED, "name": "x" * 101}, [(["name"], "length")]),
    ],
)
def test_bad_token_requests_are_422_field_by_field(
    accounts_db: ModuleType, body: object, errors: list[tuple[list[object], str]]
) -> None:
    response = TestClient(accounts_db.app).post_json("/api/tokens", body, status=422)
    assert response.content_type == "application/problem+json"
    assert [(e["path"], e["code"]) for e in response.json["errors"]] == errors


# --- sign-up input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"email": "no-at-sign", "password": PASSWORD}, 400, "not valid"),
        ({"email": "ada@example.org", "password": "short"}, 400, "at least 8 characters"),
        ({"email": "ADA@example.org", "password": PASSWORD}, 409, "'email'"),
    ],
)
def test_bad_sign_ups(accounts_db: ModuleType, body: dict, status: int, message: str) -> None:
    api_sign_up(accounts_db, "ada@example.org")
    client = TestClient(accounts_db.app)
    response = client.post_json("/api/signup", body, status=status)
    assert message in response.json["detail"]
    form = browser(accounts_db)
    shown = browser_sign_up(form, body["email"], body.get("password", ""))
    assert shown.status_int == (409 if status == 409 else 400)
    assert "<form" in shown.text and "session" in form.cookies  # the form again, not logged in
    form.get("/notes", status=303)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ([1], [([], "type")]),
        ({"email": "ada@example.org"}, [(["password"], "missing")]),
        (
            {"email": ["ada@example.org"], "password": 5},
            [(["email"], "type"), (["password"], "type")],
        ),
        ({"email": "a@b" * 100, "password": PASSWORD}, [(["email"], "length")]),
    ],
)
def test_json_sign_up_of_the_wrong_shape_is_422(
    accounts_db: ModuleType, body: object, errors: list[tuple[list[object], str]]
) -> None:
    response = TestClient(accounts_db.app).post_json("/api/signup", body, status=422)
    assert [(e["path"], e["code"]) for e in response.json["errors"]] == errors
    assert accounts_db.auth.User.select().count() == 0


@pytest.mark.usefixtures("fresh_rate_window")
def test_sign_up_is_rate_limited_per_address(accounts_db: ModuleType) -> None:
    client = TestClient(accounts_db.app)
    for n in range(10):
        client.post_json(
            "/api/signup", {"email": f"u{n}@example.org", "password": "x"}, status=400
        )
    refused = client.post_json("/api/signup", {"email": "a@b", "password": PASSWORD}, status=429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert browser_sign_up(browser(accounts_db), "b@example.org").status_int == 429


PASSWORDS = {
    "73 bytes": "p" * 73,
    "100 bytes": "p" * 100,
    "4096 bytes": "p" * 4096,
    "4096 bytes of é": "é" * 2048,
    "non-ASCII": "pässwörd ünd 密码 🔑",
    "NUL inside": "before\x00after-the-nul",
}


@pytest.mark.parametrize("password", PASSWORDS.values(), ids=PASSWORDS.keys())
def test_any_password_up_to_4096_bytes_works(accounts_db: ModuleType, password: str) -> None:
    # Through both doors: JSON sign-up and token login, the HTML sign-up and login forms.
    assert api_sign_up(accounts_db, "ada@example.org", password).status_int == 201
    new_token(accounts_db, "ada@example.org", "notes:read", password=password)
    altered = password[:-1] + ("q" if password[-1] != "q" else "r")
    body = {"email": "ada@example.org", "password": altered, "name": "x", "scopes": ["account"]}
    TestClient(accounts_db.app).post_json("/api/tokens", body, status=401)

    assert browser_sign_up(browser(accounts_db), "bob@example.org", password).status_int == 303
    client = browser(accounts_db)
    token = form_token(client.get("/login"))
    login = {"csrf_token": token, "email": "bob@example.org", "password": password}
    client.post("/login", login, status=303)
    assert "Notes of bob@example.org" in client.get("/notes").text


def test_passwords_equal_in_the_first_72_bytes_are_different(accounts_db: ModuleType) -> None:
    api_sign_up(accounts_db, "ada@example.org", "x" * 72 + "A")
    body = {
        "email": "ada@example.org",
        "password": "x" * 72 + "B",
        "name": "x",
        "scopes": ["account"],
    }
    TestClient(accounts_db.app).post_json("/api/tokens", body, status=401)


def test_a_megabyte_password_is_a_fast_400(
    accounts_db: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = "p" * 1_000_000  # with the JSON around it, still under max_content_length (1 MiB)

    def no_bcrypt(*args: object) -> None:
        raise AssertionError("bcrypt ran on a password over the limit")

    api_sign_up(accounts_db, "ada@example.org")
    monkeypatch.setattr(bcrypt, "hashpw", no_bcrypt)
    monkeypatch.setattr(bcrypt, "checkpw", no_bcrypt)
    limit = "the password is longer than 4096 bytes"
    client = TestClient(accounts_db.app)
    response = client.post_json(
        "/api/signup", {"email": "b@example.org", "password": huge}, status=400
    )
    assert response.json["detail"] == limit
    body = {"email": "ada@example.org", "password": huge, "name": "x", "scopes": ["account"]}
    response = client.post_json("/api/tokens", body, status=400)
    assert response.json["detail"] == limit

    assert limit in browser_sign_up(browser(accounts_db), "c@example.org", huge).text
    form = browser(accounts_db)
    login = {"csrf_token": form_token(form.get("/login")), "email": "ada@example.org"}
    assert limit in form.post("/login", {**login, "password": huge}, status=400).text


def test_a_body_over_max_content_length_is_413_before_the_handler(accounts_db: ModuleType) -> None:
    body = {"email": "b@example.org", "password": "p" * (1024 * 1024)}
    response = TestClient(accounts_db.app).post_json("/api/signup", body, status=413)
    assert "the limit is 1 MiB (setting max_content_length)" in response.json["detail"]


def test_a_foreign_host_is_400(accounts_db: ModuleType) -> None:
    client = TestClient(accounts_db.app)
    response = client.get("/signup", headers={"Host": "evil.example"}, status=400)
    assert "the host 'evil.example' is not served here" in response.json["detail"]
    body = {"email": "ada@example.org", "password": PASSWORD}
    client.post_json("/api/signup", body, headers={"Host": "evil.example"}, status=400)
    assert accounts_db.auth.User.select().count() == 0
