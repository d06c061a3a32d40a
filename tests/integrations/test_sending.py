"""Sending webhooks to a real HTTP server on loopback: signed, retried, logged, replayed."""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from serving import self_signed_certificate

from microback import App
from microback.db import Database
from microback.integrations import (
    InternalAddressError,
    OutgoingError,
    StandardWebhooks,
    WebhookSender,
    send,
)
from microback.integrations.outgoing import is_internal
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
    # The receiver is on loopback: allowed here, refused by default (the tests at the end).
    made = WebhookSender(jobs, timeout=2.0, max_attempts=3, allow_internal_addresses=True)
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


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.0.0.8",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address to refuse, not one to bind)
        "[::1]",
        "[fd00:ec2::254]",
        "[fe80::1]",
        "[::ffff:127.0.0.1]",
        "[64:ff9b::a9fe:a9fe]",  # NAT64 to 169.254.169.254
    ],
)
def test_an_endpoint_on_an_internal_address_is_refused_by_default(app, db, host) -> None:
    sender = WebhookSender(Jobs(app, db))
    db.create_tables()
    with pytest.raises(ValueError, match=r"internal address .*allow_internal_addresses=True"):
        sender.add_endpoint(f"http://{host}/hooks")
    assert list(sender.Endpoint.select()) == []


def test_a_name_that_resolves_to_an_internal_address_is_never_called(app, db, receiver) -> None:
    # "localhost" passes add_endpoint (a name is resolved when sending); the delivery finds
    # 127.0.0.1, where a real server listens, and sends nothing: failed at once, not retried.
    sender = WebhookSender(Jobs(app, db, backoff=0.01, max_backoff=0.02), max_attempts=3)
    db.create_tables()
    port = receiver.server.server_port
    endpoint = sender.add_endpoint(f"http://localhost:{port}/hooks")
    sender.send(endpoint, "payment.succeeded", {"id": 7})
    _run_until_idle(sender)
    assert receiver.server.received == []
    [delivery] = sender.deliveries(endpoint)
    [attempt] = delivery.log
    assert (delivery.state, attempt.status) == ("failed", None)
    assert "is an internal address" in attempt.error
    assert "allow_internal_addresses=True" in attempt.error
    assert sender.jobs.enqueued() == []  # done with, not retried
    sender.allow_internal_addresses = True  # the owner allows it: a replay goes out
    sender.replay(delivery)
    _run_until_idle(sender)
    assert len(receiver.server.received) == 1
    assert sender.deliveries(endpoint)[0].state == "delivered"


def test_send_can_refuse_internal_addresses(receiver) -> None:
    port = receiver.server.server_port
    for url in (f"http://127.0.0.1:{port}/", f"http://localhost:{port}/"):
        with pytest.raises(InternalAddressError, match="is an internal address"):
            send("POST", url, body=b"{}", timeout=2, allow_internal_addresses=False)
    assert receiver.server.received == []
    assert send("POST", receiver.url, body=b"{}", timeout=2).status == 200  # allowed by default
    assert not is_internal("93.184.215.14") and not is_internal("2606:2800:21f:cb07::1")


@pytest.fixture
def tls_receiver(tmp_path) -> Iterator[tuple[http.server.HTTPServer, ssl.SSLContext]]:
    """An HTTPS receiver on loopback whose certificate names only ``localhost``, and a client
    context that trusts it."""
    cert, key = self_signed_certificate(tmp_path, "receiver", "localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received, server.statuses, server.delay = [], [], 0.0  # type: ignore[attr-defined]
    server.handle_error = lambda *args: None  # type: ignore[method-assign] (refused clients)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server, ssl.create_default_context(cafile=str(cert))
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_https_checks_the_certificate_for_the_url_s_host(tls_receiver) -> None:
    # The connection goes to the address resolved beforehand (127.0.0.1); TLS still checks the
    # certificate against the URL's host name, and the Host header names it.
    server, trusted = tls_receiver
    port = server.server_port
    answer = send("POST", f"https://localhost:{port}/", body=b"{}", timeout=5, context=trusted)
    assert answer.status == 200 and answer.body == b"ok"
    [(headers, _)] = server.received  # type: ignore[attr-defined]
    assert headers["Host"] == f"localhost:{port}"
    with pytest.raises(OutgoingError, match="certificate verify failed"):
        send("POST", f"https://127.0.0.1:{port}/", body=b"{}", timeout=5, context=trusted)
    with pytest.raises(OutgoingError, match="certificate verify failed"):  # the system's CAs
        send("POST", f"https://localhost:{port}/", body=b"{}", timeout=5)
