"""Receiving webhooks through HTTP with webtest: verified, enqueued, each event once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import pytest

from microback import App
from microback.db import Database
from microback.integrations import (
    GitHubSignature,
    StandardWebhooks,
    StripeSignature,
    WebhookReceiver,
)
from microback.jobs import Jobs
from microback.security import CookieSessions, Csrf

KEY = b"receiving test key"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def _signed(body: bytes, message_id: str, stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    mac = hmac.new(KEY, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


@pytest.fixture
def received(app: App, db: Database) -> list:
    CookieSessions(app)
    Csrf(app)  # the endpoint is exempt: providers have no CSRF token
    jobs = Jobs(app, db)
    webhooks = WebhookReceiver(app, jobs)
    seen: list = []

    @webhooks.endpoint("/webhooks/partner", StandardWebhooks(SECRET), name="partner")
    def on_event(job, event):
        seen.append((event.source, event.id, event.json(), event.headers.get("Webhook-Id")))

    @webhooks.endpoint("/webhooks/stripe", StripeSignature("whsec_stripe_test"))
    def on_stripe(job, event):
        seen.append((event.source, event.id, event.json()["type"]))

    @webhooks.endpoint("/webhooks/github", GitHubSignature("gh secret"))
    def on_push(job, event):
        seen.append((event.source, event.id, event.headers["X-Github-Event"]))

    db.create_tables()
    return seen


def test_a_verified_event_is_enqueued_and_answered_at_once(app, received, client) -> None:
    body = json.dumps({"type": "payment.succeeded", "amount": 4200}).encode()
    headers = {**_signed(body, "msg_1"), "Authorization": "Basic cGFydG5lcjpzM2NyZXQ="}
    answer = client.post("/webhooks/partner", body, headers=headers, status=200)
    [queued] = app.extensions["jobs"].enqueued()
    assert "Authorization" not in queued.args[0].headers  # stored credentials would leak
    assert answer.json == {"received": True}
    assert received == []  # the work is the job's
    assert app.extensions["jobs"].run_pending() == 1
    assert received == [
        ("partner", "msg_1", {"type": "payment.succeeded", "amount": 4200}, "msg_1")
    ]


def test_a_redelivered_event_is_acknowledged_and_not_processed_twice(
    app, received, client
) -> None:
    body = b'{"type": "payment.succeeded"}'
    client.post("/webhooks/partner", body, headers=_signed(body, "msg_1"), status=200)
    # The provider did not see the 200 and sends it again, newly signed, inside the window.
    again = client.post("/webhooks/partner", body, headers=_signed(body, "msg_1"), status=200)
    assert again.json == {"received": True, "duplicate": True}
    assert app.extensions["jobs"].run_pending() == 1
    assert [event_id for _, event_id, *_ in received] == ["msg_1"]


def test_a_replayed_webhook_outside_the_window_is_refused(app, received, client, caplog) -> None:
    body = b'{"type": "payment.succeeded"}'
    captured = _signed(body, "msg_old", stamp=int(time.time()) - 301)
    with caplog.at_level(logging.WARNING, "microback.webhooks"):
        refused = client.post("/webhooks/partner", body, headers=captured, status=400)
    # The reason is in the log, not in the answer.
    assert refused.json["detail"] == "the webhook could not be verified"
    assert "tolerance" not in refused.text
    assert "outside the tolerance of 300 s" in caplog.text
    assert app.extensions["jobs"].run_pending() == 0
    assert received == []


def test_a_forged_or_altered_webhook_is_refused(app, received, client, caplog) -> None:
    body = b'{"type": "payment.succeeded", "amount": 1}'
    headers = _signed(body, "msg_2")
    with caplog.at_level(logging.WARNING, "microback.webhooks"):
        client.post("/webhooks/partner", body.replace(b"1", b"9"), headers=headers, status=400)
        client.post("/webhooks/partner", body, headers={"webhook-id": "x"}, status=400)
    assert "no v1 signature in webhook-signature matches the body" in caplog.text
    assert "webhook-timestamp header is missing" in caplog.text
    assert app.extensions["jobs"].run_pending() == 0


def test_github_deliveries_are_kept_by_delivery_id(app, received, client) -> None:
    body = b'{"ref": "refs/heads/main"}'
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": "sha256="
        + hmac.new(b"gh secret", body, hashlib.sha256).hexdigest(),
    }
    client.post("/webhooks/github", body, headers=headers, status=200)
    client.post("/webhooks/github", body, headers=headers, status=200)  # "Redeliver" button
    assert app.extensions["jobs"].run_pending() == 1
    assert received == [("/webhooks/github", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "push")]


def test_event_ids_are_forgotten_after_keep(app, received, client) -> None:
    body = b"{}"
    client.post("/webhooks/partner", body, headers=_signed(body, "msg_1"), status=200)
    receiver = app.extensions["webhook_receiver"]
    assert receiver.purge() == 0
    assert receiver.purge(now=time.time() + receiver.keep + 1) == 1


def test_stripe_events_are_verified_kept_by_id_and_replays_refused(app, received, client) -> None:
    body = b'{"id": "evt_1", "type": "charge.succeeded"}'

    def signed(stamp: int) -> dict[str, str]:
        mac = hmac.new(b"whsec_stripe_test", f"{stamp}.".encode() + body, hashlib.sha256)
        return {"Stripe-Signature": f"t={stamp},v1={mac.hexdigest()}"}

    now = int(time.time())
    client.post("/webhooks/stripe", body, headers=signed(now), status=200)
    client.post("/webhooks/stripe", body, headers=signed(now + 5), status=200)  # redelivery
    client.post("/webhooks/stripe", body, headers=signed(now - 600), status=400)  # replay
    assert app.extensions["jobs"].run_pending() == 1
    assert received == [("/webhooks/stripe", "evt_1", "charge.succeeded")]
