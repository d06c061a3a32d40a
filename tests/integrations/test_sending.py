"""Sending webhooks to a real HTTP server on loopback: signed, retried, logged, replayed."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from microback import App
from microback.db import Database
from microback.integrations import OutgoingError, StandardWebhooks, WebhookSender, send
from microback.jobs import Jobs


class _Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.received.append((dict(self.headers.items()), body))  # type: ignore[attr-defined]
        status = server.statuses.pop(0) if server.statuses else 200  # type: ignore[attr-defined]
        time.sleep(server.delay)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[SimpleNamespace]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received, server.statuses, server.delay = [], [], 0.0  # type: ignore[attr-defined]
    server.handle_error = lambda *args: None  # type: ignore[method-assign] (timed-out clients)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield SimpleNamespace(server=server, url=f"http://127.0.0.1:{server.server_port}/hooks")
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def sender(app: App, db: Database) -> WebhookSender:
    jobs = Jobs(app, db, backoff=0.01, max_backoff=0.02)
    made = WebhookSender(jobs, timeout=2.0, max_attempts=3)
    db.create_tables()
    return made


def _run_until_idle(sender: WebhookSender) -> None:
    for _ in range(20):  # retries become due after their (short) back-off
        sender.jobs.run_pending()
        if not sender.jobs.enqueued(state="queued") and not sender.jobs.enqueued(state="failed"):
            return
        time.sleep(0.03)


def test_a_webhook_is_signed_per_standard_webhooks_and_delivered(sender, receiver) -> None:
    endpoint = sender.add_endpoint(receiver.url)
    message_id = sender.send(endpoint, "payment.succeeded", {"id": 7, "amount": 4200})
    assert receiver.server.received == []  # sent by a job, not by send()
    _run_until_idle(sender)
    [(headers, body)] = receiver.server.received
    assert StandardWebhooks(endpoint.secret).verify(headers, body) == message_id
    assert headers["Content-Type"] == "application/json"
    assert body.startswith(b'{"type":"payment.succeeded","timestamp":"')
    assert body.endswith(b'"data":{"id":7,"amount":4200}}')
    [delivery] = sender.deliveries(endpoint)
    assert (delivery.state, delivery.attempts, delivery.message_id) == ("delivered", 1, message_id)
    assert [(a.attempt, a.status, a.error) for a in delivery.log] == [(1, 200, None)]


def test_a_failed_delivery_is_retried_and_each_attempt_logged(sender, receiver) -> None:
    receiver.server.statuses[:] = [500, 503]
    endpoint = sender.add_endpoint(receiver.url)
    message_id = sender.send(endpoint, "payment.succeeded", {"id": 7})
    _run_until_idle(sender)
    assert [h["webhook-id"] for h, _ in receiver.server.received] == [message_id] * 3
    [delivery] = sender.deliveries(endpoint)
    assert delivery.state == "delivered"
    log = sorted((a.attempt, a.status, a.error) for a in delivery.log)
    assert log == [(1, 500, "answered 500"), (2, 503, "answered 503"), (3, 200, None)]


def test_a_delivery_that_keeps_failing_is_failed_and_can_be_replayed(sender, receiver) -> None:
    receiver.server.statuses[:] = [500, 500, 500]
    endpoint = sender.add_endpoint(receiver.url)
    message_id = sender.send(endpoint, "payment.succeeded", {"id": 7})
    _run_until_idle(sender)
    [delivery] = sender.deliveries(endpoint, state="failed")
    assert delivery.attempts == 3
    assert [job.state for job in sender.jobs.enqueued()] == ["dead"]
    sender.replay(delivery)  # the receiver is fixed: send it again, same webhook-id
    _run_until_idle(sender)
    assert [h["webhook-id"] for h, _ in receiver.server.received] == [message_id] * 4
    assert sender.deliveries(endpoint)[0].state == "delivered"


def test_an_endpoint_that_does_not_answer_in_time_is_an_attempt_that_failed(
    sender, receiver
) -> None:
    receiver.server.delay = 0.6
    sender.timeout = 0.2
    endpoint = sender.add_endpoint(receiver.url)
    sender.send(endpoint, "ping", {})
    sender.jobs.run_pending()  # its retries too, which are due at once here
    attempts = list(sender.deliveries(endpoint)[0].log)
    assert attempts and all(a.status is None and "timed out" in a.error for a in attempts)
    assert all(a.milliseconds < 590 for a in attempts)  # it did not wait for the answer


def test_a_message_sent_in_a_failed_request_is_never_sent(app, sender, receiver, client) -> None:
    endpoint = sender.add_endpoint(receiver.url)

    @app.post("/pay")
    def pay(request):
        sender.send(endpoint, "payment.succeeded", {"id": 1})
        raise RuntimeError("the request fails after sending")

    client.post("/pay", status=500)
    assert sender.deliveries(endpoint) == []
    assert sender.jobs.run_pending() == 0


def test_send_refuses_urls_it_cannot_send_to_and_always_has_a_timeout() -> None:
    with pytest.raises(OutgoingError, match="only http:// and https://"):
        send("POST", "file:///etc/passwd", timeout=1)
    with pytest.raises(TypeError):
        send("POST", "http://127.0.0.1:9/")  # type: ignore[call-arg]
    with pytest.raises(OutgoingError, match=r"POST http://127\.0\.0\.1:9: ") as refused:
        send("POST", "http://user:secret@127.0.0.1:9/?token=x", timeout=1)
    assert "secret" not in str(refused.value) and "token" not in str(refused.value)
