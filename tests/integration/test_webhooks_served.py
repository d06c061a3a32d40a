"""Webhooks between real servers on loopback: a WebhookSender's job delivers to a
WebhookReceiver under ``microback serve --workers 2``; copies of one event sent at once, and a
replay, are processed once; a captured webhook replayed outside the window is refused."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time

from serving import child_env, free_port, write_module

from microback import App
from microback.db import Database
from microback.integrations import WebhookSender, sign_standard
from microback.jobs import Jobs
from microback.testing import database_servers, database_url

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest

SECRET = "whsec_c2VydmVkIHdlYmhvb2sgdGVzdCBrZXk="

RECEIVER = """
    from microback import App
    from microback.db import Database, fields, non_atomic
    from microback.integrations import StandardWebhooks, WebhookReceiver
    from microback.jobs import Jobs

    app = App(secret_key="webhooks-served-test-secret-0123456789")
    db = Database(app, {url!r}, max_connections=20, pool_timeout=10)
    jobs = Jobs(app, db)
    webhooks = WebhookReceiver(app, jobs)


    class Processed(db.Model):
        event_id = fields.CharField(max_length=200)


    @webhooks.endpoint("/hooks", StandardWebhooks({secret!r}))
    def on_event(job, event):
        Processed.create(event_id=event.id)


    db.create_tables()


    @app.post("/run-jobs")
    @non_atomic  # jobs run their own transactions, not inside a request's
    def run_jobs(request):
        jobs.run_pending()
        return {{"processed": [p.event_id for p in Processed.select()]}}
"""


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_webhooks_between_real_servers_are_processed_once(
    start_server, tmp_path, database_url
) -> None:
    write_module(tmp_path, "receiver_app.py", RECEIVER.format(url=database_url, secret=SECRET))
    subprocess.run(
        [sys.executable, "-c", "import receiver_app"], cwd=tmp_path, env=child_env(), check=True
    )
    server = start_server(
        "receiver_app.py:app", "--workers", "2", "--log-level", "warning", port=free_port()
    )

    # One event, signed now, sent twenty times at once (a provider's retries racing).
    body = b'{"type": "payment.succeeded", "data": {"id": 7}}'
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": "msg_race",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard(SECRET, "msg_race", stamp, body),
    }
    results: list[tuple[int, dict]] = []
    barrier = threading.Barrier(20)

    def deliver() -> None:
        barrier.wait()
        results.append(_post(server.port, "/hooks", body, headers))

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [status for status, _ in results] == [200] * 20, server.log
    assert sum(1 for _, answer in results if not answer.get("duplicate")) == 1

    # The same webhook captured and replayed after the window: refused, nothing said why.
    old = stamp - 400
    replayed = {
        **headers,
        "webhook-id": "msg_old",
        "webhook-timestamp": str(old),
        "webhook-signature": sign_standard(SECRET, "msg_old", old, body),
    }
    status, refused = _post(server.port, "/hooks", body, replayed)
    assert (status, refused["detail"]) == (400, "the webhook could not be verified")

    # A sender's job delivers a message to the served receiver; its replay is a duplicate.
    app = App(secret_key="the sender's own app, in this process")
    db = Database(app, f"sqlite:///{tmp_path / 'sender.db'}")
    sender = WebhookSender(Jobs(app, db), timeout=10, allow_internal_addresses=True)  # loopback
    db.create_tables()
    endpoint = sender.add_endpoint(f"http://127.0.0.1:{server.port}/hooks", secret=SECRET)
    message_id = sender.send(endpoint, "payment.succeeded", {"id": 8})
    assert sender.jobs.run_pending() == 1
    [delivery] = sender.deliveries(endpoint)
    sender.replay(delivery)
    assert sender.jobs.run_pending() == 1
    log = sorted(delivery.log, key=lambda attempt: attempt.id)
    assert [(a.status, json.loads(a.response)) for a in log] == [
        (200, {"received": True}),
        (200, {"received": True, "duplicate": True}),
    ]
    db.close_all()

    status, answer = _post(server.port, "/run-jobs", b"", {})
    assert status == 200, server.log
    assert sorted(answer["processed"]) == sorted(["msg_race", message_id])
