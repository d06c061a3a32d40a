"""Throttling counted in the database: per account, per address, across app instances."""

import time

import pytest

from microback.security import rate_limit, ratelimit
from microback.security.ratelimit import Limit, parse_limit
from microback.testing import TestClient

from .conftest import PASSWORD, build_app

# The tests count hits against hourly and fifteen-minute windows.
pytestmark = pytest.mark.usefixtures("fresh_rate_window")


def attempt(client, email, password, **kwargs):
    return client.post_json("/login", {"email": email, "password": password}, **kwargs)


def test_failed_logins_per_account_end_in_429_then_recover(database_url):
    app, db, auth, _ = build_app(database_url, login_limit_per_account="3/2seconds")
    try:
        auth.create_user("ada@example.org", PASSWORD)
        client = TestClient(app)
        time.sleep(2 - time.time() % 2)  # start at a window's beginning: all 3 fall in it
        for _ in range(3):
            attempt(client, "ada@example.org", "wrong", status=401)
        refused = attempt(client, "ADA@example.org", PASSWORD, status=429)
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        assert refused.json["detail"].startswith("too many failed sign-ins")
        attempt(client, "bob@example.org", "wrong", status=401)  # other accounts unaffected
        time.sleep(int(refused.headers["Retry-After"]) + 0.1)
        attempt(client, "ada@example.org", PASSWORD)  # no permanent lock-out
    finally:
        db.close_all()


def test_failures_per_address_are_limited_across_accounts(database_url):
    app, db, _auth, _ = build_app(database_url, login_limit_per_address="4/hour")
    try:
        client = TestClient(app, extra_environ={"REMOTE_ADDR": "198.51.100.7"})
        for n in range(4):
            attempt(client, f"user{n}@example.org", "guess", status=401)
        attempt(client, "user9@example.org", "guess", status=429)
        other = TestClient(app, extra_environ={"REMOTE_ADDR": "203.0.113.1"})
        attempt(other, "user9@example.org", "guess", status=401)
    finally:
        db.close_all()


def test_spoofed_forwarded_for_does_not_reset_the_address_count(database_url):
    app, db, _auth, _ = build_app(database_url, login_limit_per_address="2/hour")
    try:
        client = TestClient(app, extra_environ={"REMOTE_ADDR": "198.51.100.7"})
        for n in range(2):
            spoof = {"X-Forwarded-For": f"10.0.0.{n}"}
            attempt(client, f"u{n}@example.org", "x", headers=spoof, status=401)
        attempt(client, "u3@example.org", "x", headers={"X-Forwarded-For": "1.1.1.1"}, status=429)
    finally:
        db.close_all()


def test_counts_are_shared_by_app_instances_on_one_database(database_url):
    # Two processes or hosts are two app instances over the same tables.
    first, db1, auth1, _ = build_app(database_url, login_limit_per_account="2/hour")
    second, db2, _, _ = build_app(database_url, login_limit_per_account="2/hour")
    try:
        auth1.create_user("ada@example.org", PASSWORD)
        attempt(TestClient(first), "ada@example.org", "wrong", status=401)
        attempt(TestClient(second), "ada@example.org", "wrong", status=401)
        attempt(TestClient(first), "ada@example.org", PASSWORD, status=429)
    finally:
        db1.close_all()
        db2.close_all()


def test_failures_count_even_when_the_request_transaction_rolls_back(database_url):
    app, db, auth, _ = build_app(
        database_url, db_options={"atomic_requests": True}, login_limit_per_account="2/hour"
    )
    try:
        auth.create_user("ada@example.org", PASSWORD)
        client = TestClient(app)
        attempt(client, "ada@example.org", "wrong", status=401)  # raises: rolled back
        attempt(client, "ada@example.org", "wrong", status=401)
        attempt(client, "ada@example.org", PASSWORD, status=429)
    finally:
        db.close_all()


def test_rate_limit_decorator(database_url):
    app, db, _, _ = build_app(database_url)

    @app.get("/search")
    @rate_limit("2/hour")
    def search(request):
        return {"ok": True}

    @app.get("/per-user")
    @rate_limit("1/hour", key=lambda request: request.args.get("user", "?"))
    def per_user(request):
        return {"ok": True}

    try:
        client = TestClient(app)
        client.get("/search")
        client.get("/search")
        refused = client.get("/search", status=429)
        assert int(refused.headers["Retry-After"]) <= 3600
        client.get("/per-user?user=a")
        client.get("/per-user?user=b")
        client.get("/per-user?user=a", status=429)
    finally:
        db.close_all()


@pytest.mark.parametrize(
    ("spec", "limit"),
    [("10/minute", Limit(10, 60)), ("5/15minutes", Limit(5, 900)), ("1/day", Limit(1, 86400))],
)
def test_parse_limit(spec, limit):
    assert parse_limit(spec) == limit


@pytest.mark.parametrize("spec", ["ten/minute", "0/minute", "5/fortnight", "5"])
def test_parse_limit_refuses_nonsense(spec):
    with pytest.raises(ValueError, match="write it like '10/minute'"):
        parse_limit(spec)


@pytest.mark.parametrize("address", ["", "unix:/run/app.sock"])
def test_without_a_client_address_no_global_bucket_is_made(
    database_url, address, caplog, monkeypatch
):
    # Over a Unix socket without a trusted proxy every client would share one key: a hundred
    # failures from anyone would lock everyone out. The per-account limit still holds.
    monkeypatch.setattr(ratelimit, "_warned_no_address", False)  # warned once per process
    app, db, _auth, _ = build_app(
        database_url, login_limit_per_address="2/hour", login_limit_per_account="3/hour"
    )
    try:
        client = TestClient(app, extra_environ={"REMOTE_ADDR": address})
        for n in range(4):
            attempt(client, f"user{n}@example.org", "guess", status=401)
        for _ in range(3):
            attempt(client, "ada@example.org", "guess", status=401)
        attempt(client, "ada@example.org", "guess", status=429)
    finally:
        db.close_all()
    assert "limits per address are not applied" in caplog.text
