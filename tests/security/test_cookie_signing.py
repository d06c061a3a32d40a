"""Session cookies stay in itsdangerous's format: an upgrade or a rollback logs nobody out.

microback/security/cookie_signing.py writes and reads the format of itsdangerous's
``URLSafeTimedSerializer`` itself (issue 19); these tests hold it to what itsdangerous makes
and accepts, so an itsdangerous release that changes its format fails here first.
"""

import hashlib
import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from microback import App
from microback.security import CookieSessions
from microback.testing import TestClient

from .test_sessions import SECRET, _MicrobackJSON, cookie_for

#: Far enough for the cookies below, made on 2026-12-02, to be inside it for a century.
CENTURY = 100 * 365 * 24 * 3600
#: Made by CookieSessions at 827ff81, before cookie_signing (itsdangerous signed them):
#: the secret SECRET, the default salt; the second is compressed, the third signed with
#: OLD_KEY.
BEFORE = {
    "plain": (
        "eyJ1c2VyIjoxLCJfc2lkIjoia1czcTlYYlQybVlsMGFWblI4c1B6ZyJ9.aw_RbQ."
        "U6CFNvr-M0EB7vnwPJhs_Bfmr73bCvZ3gW54Y35AGeo",
        {"user": 1, "_sid": "kW3q9XbT2mYl0aVnR8sPzg"},
    ),
    "compressed": (
        ".eJyrVkpOLCpRsopWSiwoyElV0hmlyaJjawE0sWf9.aw_RbQ."
        "YDwcr-Yhxa6ihAuSfJV_8EF-2-TSvXF__vTA3ep8cDw",
        {"cart": ["apple"] * 40},
    ),
    "old key": (
        "eyJ1c2VyIjo3fQ.aw_RbQ.IF_iH74bij1j87MPTvngdQwtXQiD5OyFN5aAZnhg8t4",
        {"user": 7},
    ),
}
OLD_KEY = "old-key-0123456789abcdef0123"
SESSIONS = [{"user": 1}, {"cart": ["apple"] * 40}, {"name": "Zoë", "n": 1.5, "ok": None}]


def app_with(**options):
    app = App(secret_key=SECRET)
    sessions = CookieSessions(app, **options)

    @app.get("/get")
    def get_values(request):
        return {"session": dict(request.session)}

    return app, sessions


def session_of(app, cookie):
    return TestClient(app).get("/get", headers={"Cookie": f"session={cookie}"}).json["session"]


@pytest.mark.parametrize("name", BEFORE)
def test_cookies_signed_before_the_upgrade_still_verify(name):
    cookie, data = BEFORE[name]
    app, _ = app_with(secret_keys=[SECRET, OLD_KEY], max_age=CENTURY)
    assert session_of(app, cookie) == data


@pytest.mark.parametrize("name", BEFORE)
def test_cookies_signed_before_the_upgrade_expire_as_before(name):
    cookie, _ = BEFORE[name]
    signed_at = 1_796_198_765  # the timestamp in the cookies: 2026-12-02 08:06:05 UTC
    app, _ = app_with(secret_keys=[SECRET, OLD_KEY], max_age=int(time.time()) - signed_at - 2)
    assert session_of(app, cookie) == {}


def itsdangerous_as_before(*keys):
    """The serializer CookieSessions used before cookie_signing (it signs with the last key)."""
    return URLSafeTimedSerializer(
        list(keys),
        salt="microback.session",
        serializer=_MicrobackJSON,
        signer_kwargs={"digest_method": hashlib.sha256},
    )


@pytest.mark.parametrize("data", SESSIONS)
def test_cookies_signed_now_verify_with_itsdangerous(data):
    # A rollback to a release before cookie_signing keeps everybody logged in.
    _, sessions = app_with()
    cookie = sessions.dumps(data)
    assert itsdangerous_as_before(SECRET).loads(cookie, max_age=60) == data
    assert cookie.startswith(".") == (data == SESSIONS[1])  # compressed when shorter


@pytest.mark.parametrize("data", SESSIONS)
def test_cookies_signed_by_itsdangerous_verify_now(data):
    app, _ = app_with()
    assert session_of(app, itsdangerous_as_before(SECRET).dumps(data)) == data


def test_an_uncompressed_cookie_is_the_one_itsdangerous_makes():
    _, sessions = app_with(secret_keys=["new-key-0123456789abcdef0123", OLD_KEY])
    signer = itsdangerous_as_before(OLD_KEY, "new-key-0123456789abcdef0123")
    for _ in range(3):  # the two must be made within one second
        second = int(time.time())
        ours, theirs = sessions.dumps({"user": 1}), signer.dumps({"user": 1})
        if int(time.time()) == second:
            break
    assert ours == theirs


def test_rotated_keys_verify_and_the_first_signs():
    old_app, old = app_with(secret_keys=[OLD_KEY])
    app, sessions = app_with(secret_keys=["new-key-0123456789abcdef0123", OLD_KEY])
    assert session_of(app, old.dumps({"user": 7})) == {"user": 7}
    assert session_of(old_app, sessions.dumps({"user": 8})) == {}
    assert session_of(app, cookie_for({"user": 9}, secret="a-key-nobody-configured")) == {}
