"""``Idempotency-Key`` through HTTP with webtest, on every selected backend."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from microback import App, abort
from microback.db import Database, fields
from microback.integrations import Idempotency
from microback.testing import TestClient


@pytest.fixture
def shop(app: App, db: Database) -> SimpleNamespace:
    idempotency = Idempotency(app, db)

    class Order(db.Model):
        amount = fields.IntegerField()

    state = SimpleNamespace(Order=Order, idempotency=idempotency, fail=None, wait=None)

    @app.post("/orders")
    @idempotency.route
    def create(request):
        if state.wait is not None:
            state.wait()  # before the first write: on SQLite, a write holds the one lock
        order = Order.create(amount=request.json["amount"])
        if state.fail == "raise":
            raise RuntimeError("the payment gateway is down")
        if state.fail == "abort":
            abort(400, "the amount is over your limit")
        return {"id": order.id, "amount": order.amount}, 201, {"Location": f"/orders/{order.id}"}

    @app.post("/notes")
    def not_opted_in(request):
        Order.create(amount=0)
        return {}, 201

    db.create_tables()
    return state


def _post(client: TestClient, key: str | None, amount: int = 10, **options):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post_json("/orders", {"amount": amount}, headers=headers, **options)


def test_a_repeat_gets_the_stored_answer_and_runs_once(shop, client) -> None:
    first = _post(client, "order-1", status=201)
    again = _post(client, "order-1", status=201)
    assert again.json == first.json == {"id": 1, "amount": 10}
    assert again.headers["Location"] == first.headers["Location"] == "/orders/1"
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert shop.Order.select().count() == 1
    # The draft's sf-string form names the same key.
    assert _post(client, '"order-1"', status=201).json == first.json
    assert shop.Order.select().count() == 1


def test_without_a_key_or_on_another_route_requests_run_each_time(shop, client) -> None:
    _post(client, None, status=201)
    _post(client, None, status=201)
    client.post_json("/notes", {}, headers={"Idempotency-Key": "k"}, status=201)
    client.post_json("/notes", {}, headers={"Idempotency-Key": "k"}, status=201)
    assert shop.Order.select().count() == 4


def test_the_same_key_on_another_request_is_422(shop, client) -> None:
    _post(client, "order-1", amount=10, status=201)
    refused = _post(client, "order-1", amount=99, status=422)
    assert "different request" in refused.json["detail"]
    assert shop.Order.select().count() == 1


def test_a_bad_key_is_400(shop, client) -> None:
    refused = _post(client, "x" * 256, status=400)
    assert "1 to 255 printable ASCII" in refused.json["detail"]
    _post(client, "caf\u00e9".encode().decode("latin-1"), status=400)
    assert shop.Order.select().count() == 0


def test_required_keys(app: App, db: Database, client) -> None:
    Idempotency(app, db, all_routes=True, required=True)

    @app.post("/pay")
    def pay(request):
        return {}, 201

    db.create_tables()
    refused = client.post("/pay", status=400)
    assert "needs an Idempotency-Key header" in refused.json["detail"]
    client.post("/pay", headers={"Idempotency-Key": "a"}, status=201)


def test_a_failed_request_is_not_the_answer_and_may_be_retried(shop, client) -> None:
    shop.fail = "raise"
    _post(client, "order-1", status=500)
    assert shop.Order.select().count() == 0  # rolled back, and the key released with it
    shop.fail = None
    assert _post(client, "order-1", status=201).json == {"id": shop.Order.get().id, "amount": 10}
    assert shop.Order.select().count() == 1


def test_an_aborted_request_is_rolled_back_and_its_answer_stored(shop, client) -> None:
    shop.fail = "abort"
    first = _post(client, "order-1", status=400)
    shop.fail = None
    again = _post(client, "order-1", status=400)
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert shop.Order.select().count() == 0


@contextlib.contextmanager
def _first_request_held(shop, client, key: str, status: int) -> Iterator[list]:
    """Send a request with ``key`` in a thread and hold its handler (before its first write)
    for the block; give the list its answer goes into."""
    started, finish = threading.Event(), threading.Event()

    def wait() -> None:
        started.set()
        assert finish.wait(10)

    shop.wait = wait
    results: list = []
    first = threading.Thread(target=lambda: results.append(_post(client, key, status=status)))
    first.start()
    try:
        assert started.wait(10)
        yield results
    finally:
        finish.set()
        first.join(10)
        shop.wait = None


def test_a_repeat_while_the_first_runs_is_409(shop, client) -> None:
    with _first_request_held(shop, client, "order-1", 201) as results:
        busy = _post(client, "order-1", status=409)
        assert "still being processed" in busy.json["detail"]
        assert int(busy.headers["Retry-After"]) >= 1
    assert _post(client, "order-1", status=201).json == results[0].json
    assert shop.Order.select().count() == 1


def test_a_key_is_taken_over_after_lock_timeout_and_the_slow_request_rolled_back(
    app: App, shop, client
) -> None:
    shop.idempotency.lock_timeout = 0.3
    with _first_request_held(shop, client, "k", 409) as results:
        time.sleep(0.4)  # past lock_timeout: as if its worker had died
        shop.wait = None
        taken = _post(client, "k", status=201)
    assert results and results[0].status_int == 409
    assert [o.id for o in shop.Order.select()] == [taken.json["id"]]


def test_keys_expire(shop, client) -> None:
    _post(client, "order-1", status=201)
    model = shop.idempotency.model
    model.update(expires_at=time.time() - 1).execute()
    replay = _post(client, "order-1", status=201)
    assert "Idempotent-Replayed" not in replay.headers
    assert shop.Order.select().count() == 2
    model.update(expires_at=time.time() - 1).execute()
    assert shop.idempotency.purge() == 1


def test_keys_are_scoped_per_credential(shop, client) -> None:
    for token in ("alice-token", "bob-token"):
        client.post_json(
            "/orders",
            {"amount": 10},
            headers={"Idempotency-Key": "same", "Authorization": f"Bearer {token}"},
            status=201,
        )
    assert shop.Order.select().count() == 2


def test_keys_are_scoped_per_user(app: App, db: Database, shop) -> None:
    from microback.security import Auth

    auth = Auth(app, db, password_rounds=10)
    db.create_tables()
    made = []
    for email in ("ada@example.org", "bob@example.org"):
        user = auth.create_user(email, "a long enough password")
        client = TestClient(app)
        client.log_in(user)
        client.get("/nothing", status=404)
        token = client.cookies.get("csrf_token") or ""
        made.append(
            client.post_json(
                "/orders",
                {"amount": 10},
                headers={"Idempotency-Key": "same", "X-CSRF-Token": token},
                status=201,
            ).json["id"]
        )
    assert len(set(made)) == 2


def test_a_non_atomic_route_stores_its_answer_too(app: App, db: Database, client) -> None:
    from microback.db import non_atomic

    idempotency = Idempotency(app, db)
    made = []

    @app.post("/uploads")
    @idempotency.route
    @non_atomic
    def upload(request):
        made.append(1)
        return {"n": len(made)}, 201

    db.create_tables()
    first = client.post("/uploads", headers={"Idempotency-Key": "u"}, status=201)
    again = client.post("/uploads", headers={"Idempotency-Key": "u"}, status=201)
    assert again.json == first.json == {"n": 1}
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_non_atomic_route_s_key_is_never_taken_over(app: App, db: Database, client) -> None:
    # Its writes commit as they are made: a second run after lock_timeout would make them twice.
    from microback.db import non_atomic

    idempotency = Idempotency(app, db, lock_timeout=0.3)

    class Upload(db.Model):
        n = fields.IntegerField()

    started, finish = threading.Event(), threading.Event()

    @app.post("/uploads")
    @idempotency.route
    @non_atomic
    def upload(request):
        Upload.create(n=1)  # committed at once
        if not started.is_set():
            started.set()
            assert finish.wait(10)  # slower than lock_timeout
        return {"uploads": Upload.select().count()}, 201

    db.create_tables()
    post = functools.partial(client.post, "/uploads", headers={"Idempotency-Key": "u"})
    results: list = []
    first = threading.Thread(target=lambda: results.append(post(status=201)))
    first.start()
    try:
        assert started.wait(10)
        time.sleep(0.4)  # past lock_timeout
        busy = post(status=409)
        assert int(busy.headers["Retry-After"]) > 3600  # held until the key expires
    finally:
        finish.set()
        first.join(10)
    assert [r.json for r in results] == [{"uploads": 1}]
    assert post(status=201).json == {"uploads": 1}  # the stored answer
    assert Upload.select().count() == 1


def test_an_answer_made_before_the_handler_is_not_the_outcome(app: App, db: Database) -> None:
    from microback.security import CookieSessions, Csrf

    idempotency = Idempotency(app, db)
    CookieSessions(app)
    Csrf(app)  # its check runs after the key is claimed: a 403 from it is not the outcome
    made = []

    @app.post("/orders")
    @idempotency.route
    def create(request):
        made.append(1)
        return {"n": len(made)}, 201

    db.create_tables()
    client = TestClient(app)
    client.post(
        "/orders", headers={"Idempotency-Key": "k", "Origin": "https://evil.example"}, status=403
    )
    assert client.post("/orders", headers={"Idempotency-Key": "k"}, status=201).json == {"n": 1}


def test_a_large_answer_is_stored_whole(app: App, db: Database, client) -> None:
    # MariaDB's BLOB stops at 64 KiB; the column is a LONGBLOB there.
    idempotency = Idempotency(app, db)
    runs = []

    @app.post("/exports")
    @idempotency.route
    def export(request):
        runs.append(1)
        return "x" * 200_000, 201

    db.create_tables()
    first = client.post("/exports", headers={"Idempotency-Key": "e"}, status=201)
    again = client.post("/exports", headers={"Idempotency-Key": "e"}, status=201)
    assert again.body == first.body and len(again.body) == 200_000
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert runs == [1]


def test_with_all_routes_a_refusal_by_a_hook_is_not_the_outcome(app: App, db: Database) -> None:
    from microback.security import CookieSessions, Csrf

    Idempotency(app, db, all_routes=True)
    CookieSessions(app)
    Csrf(app)
    made = []

    @app.post("/orders")
    def create(request):
        made.append(1)
        return {"n": len(made)}, 201

    db.create_tables()
    client = TestClient(app)
    client.post(
        "/orders", headers={"Idempotency-Key": "k", "Origin": "https://evil.example"}, status=403
    )
    assert client.post("/orders", headers={"Idempotency-Key": "k"}, status=201).json == {"n": 1}
    again = client.post("/orders", headers={"Idempotency-Key": "k"}, status=201)
    assert again.headers["Idempotent-Replayed"] == "true"
