import hashlib
import logging
import secrets
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from microback import App
from microback.http import json_dumps, json_loads
from microback.security import CookieSessions, SessionTooLarge
from microback.testing import TestClient

SECRET = "session-test-secret-0123456789abcdef"


def make_app(**options):
    app = App(secret_key=SECRET)
    sessions = CookieSessions(app, **options)

    @app.post("/set/<key>")
    def set_value(request, key):
        request.session[key] = request.args.get("value", "")
        return {"session": dict(request.session)}

    @app.get("/get")
    def get_values(request):
        return {"session": dict(request.session), "new": request.session.is_new}

    @app.post("/clear")
    def clear(request):
        request.session.clear()
        return {}

    @app.get("/untouched")
    def untouched(request):
        return {}

    @app.post("/big")
    def big(request):
        request.session["blob"] = secrets.token_hex(2900)  # random: does not compress
        return {}

    return app, sessions


@pytest.fixture
def session_app():
    return make_app()


def cookie_header(response):
    return [v for k, v in response.headerlist if k == "Set-Cookie"]


def test_session_round_trip(session_app):
    app, _ = session_app
    client = TestClient(app)
    client.post("/set/color?value=blue")
    assert client.get("/get").json == {"session": {"color": "blue"}, "new": False}


def test_cookie_attributes_are_safe(session_app):
    app, _ = session_app
    response = TestClient(app).post("/set/a?value=1")
    [cookie] = cookie_header(response)
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Max-Age=1209600" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    https = TestClient(app, extra_environ={"wsgi.url_scheme": "https"}).post("/set/a?value=1")
    assert "Secure" in cookie_header(https)[0]
    assert response.headers["Vary"] == "Cookie"


def test_secure_always_when_set():
    app, _ = make_app(secure=True)
    [cookie] = cookie_header(TestClient(app).post("/set/a?value=1"))
    assert "Secure" in cookie


def test_requests_that_do_not_touch_the_session_set_nothing(session_app):
    app, _ = session_app
    client = TestClient(app)
    client.post("/set/a?value=1")
    response = client.get("/untouched")
    assert cookie_header(response) == []
    assert "Vary" not in response.headers
    assert cookie_header(client.get("/get")) == []  # read but unchanged: no new cookie


class _MicrobackJSON:
    """The JSON sessions were signed with through itsdangerous before cookie_signing."""

    dumps = staticmethod(json_dumps)
    loads = staticmethod(json_loads)


def cookie_for(value, *, secret=SECRET, salt="microback.session", age=0, timed=True):
    """A cookie as itsdangerous signs it, configured as sessions were before cookie_signing;
    signed ``age`` seconds ago."""

    class Signer(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - age

    kind = URLSafeTimedSerializer if timed else URLSafeSerializer
    serializer = kind(
        secret,
        salt=salt,
        serializer=_MicrobackJSON,
        signer=Signer if timed else None,
        signer_kwargs={"digest_method": hashlib.sha256},
    )
    return serializer.dumps(value)


def _with_payload_of(good, other):
    """``good`` with the payload of ``other`` and ``good``'s timestamp and signature."""
    return other.split(".")[0] + good[good.index(".") :]


def _with_timestamp_of(good, other):
    """``good`` with the timestamp of ``other`` and ``good``'s payload and signature."""
    payload, _, signature = good.split(".")
    return f"{payload}.{other.split('.')[1]}.{signature}"


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(
            lambda good: good[:-10] + ("A" if good[-10] != "A" else "B") + good[-9:],
            id="tampered signature",
        ),
        pytest.param(lambda good: good[: len(good) // 2], id="truncated"),
        pytest.param(lambda good: "garbage", id="garbage"),
        pytest.param(lambda good: cookie_for({"user": 1}, secret="other"), id="foreign key"),
        pytest.param(lambda good: cookie_for({"user": 1}, salt="reset"), id="foreign salt"),
        pytest.param(lambda good: cookie_for(["not", "a", "dict"]), id="not a dict"),
        pytest.param(lambda good: "é\x00;" * 10, id="binary junk"),
        pytest.param(
            lambda good: _with_payload_of(good, cookie_for({"user": 2})), id="tampered payload"
        ),
        pytest.param(
            lambda good: _with_timestamp_of(good, cookie_for({"user": 1}, age=99)),
            id="tampered timestamp",
        ),
        pytest.param(lambda good: cookie_for({"user": 1}, timed=False), id="no timestamp"),
        pytest.param(lambda good: cookie_for({"user": 1}, age=-120), id="from the future"),
        pytest.param(lambda good: "." + good, id="payload marked compressed"),
    ],
)
def test_bad_cookies_are_an_empty_session(session_app, cookie, caplog):
    app, _ = session_app
    client = TestClient(app)
    good = cookie_for({"user": 1})
    assert client.get("/get", headers={"Cookie": f"session={good}"}).json["session"] == {"user": 1}
    bad = cookie(good)
    with caplog.at_level(logging.ERROR):
        response = client.get("/get", headers={"Cookie": f"session={bad}"})
    assert response.status_int == 200
    assert response.json == {"session": {}, "new": True}
    assert not caplog.records


def test_expired_cookie_is_an_empty_session():
    app, _ = make_app(max_age=60)
    client = TestClient(app)
    fresh = {"Cookie": f"session={cookie_for({'user': 1}, age=50)}"}
    assert client.get("/get", headers=fresh).json["session"] == {"user": 1}
    expired = cookie_for({"user": 1}, age=61)
    assert client.get("/get", headers={"Cookie": f"session={expired}"}).json == {
        "session": {},
        "new": True,
    }


def test_key_rotation_first_signs_all_verify():
    old_app, old = make_app(secret_keys=["old-key-0123456789abcdef0123"])
    old_cookie = old.dumps({"user": 7})
    app, sessions = make_app(
        secret_keys=["new-key-0123456789abcdef0123", "old-key-0123456789abcdef0123"]
    )
    client = TestClient(app)
    assert client.get("/get", headers={"Cookie": f"session={old_cookie}"}).json["session"] == {
        "user": 7
    }
    new_cookie = sessions.dumps({"user": 8})
    only_new_app, _ = make_app(secret_keys=["new-key-0123456789abcdef0123"])
    response = TestClient(only_new_app).get("/get", headers={"Cookie": f"session={new_cookie}"})
    assert response.json["session"] == {"user": 8}
    response = TestClient(old_app).get("/get", headers={"Cookie": f"session={new_cookie}"})
    assert response.json["session"] == {}


def test_clearing_deletes_the_cookie(session_app):
    app, _ = session_app
    client = TestClient(app)
    client.post("/set/a?value=1")
    [cookie] = cookie_header(client.post("/clear"))
    assert cookie.startswith("session=;")
    assert "Max-Age=0" in cookie or "expires=Thu, 01 Jan 1970" in cookie
    assert client.get("/get").json == {"session": {}, "new": True}


def test_too_large_session_fails_at_the_write(session_app, caplog):
    app, _ = session_app
    client = TestClient(app)
    client.post("/set/a?value=1")
    with caplog.at_level(logging.ERROR, logger="microback.app"):
        response = client.post("/big", status=500)
    assert cookie_header(response) == []
    assert caplog.records[-1].exc_info[0] is SessionTooLarge
    assert "cookie limit" in str(caplog.records[-1].exc_info[1])
    assert client.get("/get").json["session"] == {"a": "1"}  # the old session survives


def test_rotate_drops_the_csrf_secret(session_app):
    app, _ = session_app

    @app.post("/rotate")
    def rotate(request):
        request.session["_csrf"] = "known-to-attacker"
        request.session["user"] = 1
        request.session.rotate()
        return dict(request.session)

    assert TestClient(app).post("/rotate").json == {"user": 1}


def test_same_site_none_requires_secure():
    with pytest.raises(ValueError, match="SameSite=None"):
        make_app(same_site="None", secure=False)


def test_changes_from_a_failed_request_are_not_saved(session_app):
    app, _ = session_app

    @app.post("/fail")
    def fail(request):
        request.session["a"] = "changed"
        raise RuntimeError("boom")

    client = TestClient(app)
    client.post("/set/a?value=1")
    assert cookie_header(client.post("/fail", status=500)) == []
    assert client.get("/get").json["session"] == {"a": "1"}


# --- caches and the cookie's name -------------------------------------------------------------


def test_a_response_that_writes_the_cookie_is_not_for_shared_caches(session_app):
    app, _ = session_app

    @app.post("/public")
    def public(request):
        request.session["seen"] = True
        return {}, 200, {"Cache-Control": "public, max-age=60"}

    @app.post("/signed-in")
    def signed_in(request):
        request.session["_uid"] = 7  # what Auth keeps: the page is per-user
        return {}

    client = TestClient(app)
    assert client.post("/set/a?value=1").headers["Cache-Control"] == "private"
    assert "Cache-Control" not in client.get("/get").headers  # read, not written
    assert "Cache-Control" not in client.get("/untouched").headers
    assert client.post("/public").headers["Cache-Control"] == "public, max-age=60"  # its own
    assert client.post("/signed-in").headers["Cache-Control"] == "no-store"
    assert client.post("/clear").headers["Cache-Control"] == "private"  # the cookie deleted


def test_always_secure_cookies_get_the_host_prefix():
    app, sessions = make_app(secure=True)
    [cookie] = cookie_header(TestClient(app).post("/set/a?value=1"))
    assert cookie.startswith("__Host-session=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie and sessions.cookie_name == "__Host-session"
    # The prefix needs Secure, no Domain and Path=/; a name given is kept as it is.
    for options in ({"domain": "example.org"}, {"path": "/app"}, {"cookie_name": "sid"}):
        _, other = make_app(**{"secure": True, **options})
        assert other.cookie_name == options.get("cookie_name", "session")


def test_a_cookie_under_the_old_name_is_read_and_renamed():
    before, _ = make_app()
    old = cookie_header(TestClient(before).post("/set/color?value=blue"))[0].split(";")[0]
    assert old.startswith("session=")

    after, _ = make_app(secure=True)
    response = TestClient(after).get("/get", headers={"Cookie": old})
    assert response.json == {"session": {"color": "blue"}, "new": False}
    renamed, deleted = sorted(cookie_header(response))
    assert renamed.startswith("__Host-session=") and "Secure" in renamed
    assert deleted.startswith("session=;") and "Max-Age=0" in deleted
    new = renamed.split(";")[0]
    again = TestClient(after).get("/get", headers={"Cookie": new})
    assert again.json["session"] == {"color": "blue"} and cookie_header(again) == []


def test_csrf_protects_a_request_that_sends_only_the_old_cookie():
    from microback.security import Csrf

    before, _ = make_app()
    old = cookie_header(TestClient(before).post("/set/color?value=blue"))[0].split(";")[0]
    after, _ = make_app(secure=True)
    Csrf(after)
    refused = TestClient(after).post("/set/x", headers={"Cookie": old}, status=403)
    assert "CSRF" in refused.json["detail"]


def test_previous_secret_keys_verify_cookies_signed_before_a_rotation(monkeypatch):
    old_key = "the-key-every-instance-signed-with-until-today-0123"
    old_app, before = make_app(secret_keys=[old_key])
    old_cookie = before.dumps({"user": 7})
    monkeypatch.setenv("MICROBACK_PREVIOUS_SECRET_KEYS", old_key)
    app = App(secret_key="the-new-key-every-instance-signs-with-now-0123")
    sessions = CookieSessions(app)

    @app.get("/get")
    def get_values(request):
        return {"session": dict(request.session)}

    cookie = {"Cookie": f"session={old_cookie}"}
    assert TestClient(app).get("/get", headers=cookie).json == {"session": {"user": 7}}
    new_cookie = sessions.dumps({"user": 8})  # signed with the new key, which the old refuses
    refused = TestClient(old_app).get("/get", headers={"Cookie": f"session={new_cookie}"})
    assert refused.json["session"] == {}
    assert "the-key-every" not in repr(app.settings)


def test_a_previous_secret_key_is_hidden_in_messages(monkeypatch):
    monkeypatch.setenv("MICROBACK_PREVIOUS_SECRET_KEYS", "k-0123456789abcdef")
    app = App(secret_key="the-new-key-every-instance-signs-with-now-0123")
    assert app.settings.previous_secret_keys == ("k-0123456789abcdef",)
    assert app.settings.describe("previous_secret_keys") == "(hidden)"
