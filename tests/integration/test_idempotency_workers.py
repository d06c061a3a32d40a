"""50 POSTs with one ``Idempotency-Key`` at once, across two ``microback serve`` workers.

The side effect must happen once; every other request gets 409 (the first still runs) or the
stored answer (it has finished). On every selected backend.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from collections import Counter

from serving import child_env, free_port, write_module

from microback.testing import database_servers, database_url

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest

APP = """
    import gevent

    from microback import App
    from microback.db import Database, fields
    from microback.integrations import Idempotency

    app = App(secret_key="idempotency-workers-test-secret-0123456789")
    db = Database(app, {url!r}, max_connections=20, pool_timeout=10)
    idempotency = Idempotency(app, db)


    class Charge(db.Model):
        amount = fields.IntegerField()


    db.create_tables()


    @app.post("/charges")
    @idempotency.route
    def charge(request):
        gevent.sleep(0.3)  # a call to the payment gateway: the others arrive meanwhile
        made = Charge.create(amount=request.json["amount"])
        return {{"id": made.id}}, 201


    @app.get("/charges")
    def charges(request):
        return {{"count": Charge.select().count()}}
"""


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": "application/json", "Idempotency-Key": "charge-42"}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_fifty_posts_with_one_key_on_two_workers_charge_once(
    start_server, tmp_path, database_url
) -> None:
    write_module(tmp_path, "charges_app.py", APP.format(url=database_url))
    subprocess.run(  # the tables once, before two workers race to create them
        [sys.executable, "-c", "import charges_app"], cwd=tmp_path, env=child_env(), check=True
    )
    server = start_server(
        "charges_app.py:app", "--workers", "2", "--log-level", "warning", port=free_port()
    )
    body = json.dumps({"amount": 4200}).encode()
    results: list[tuple[int, dict]] = []
    barrier = threading.Barrier(50)

    def post() -> None:
        barrier.wait()
        results.append(_request(server.port, "POST", "/charges", body))

    threads = [threading.Thread(target=post) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = Counter(status for status, _ in results)
    print(f"\n50 POSTs with one Idempotency-Key on two workers: {dict(statuses)}")
    assert len(results) == 50
    assert set(statuses) <= {201, 409}, (statuses, server.log)
    assert statuses[201] >= 1 and statuses[409] >= 1, statuses
    assert {answer["id"] for status, answer in results if status == 201} == {1}
    # Afterwards every repeat is the stored answer, and there is one charge.
    assert _request(server.port, "POST", "/charges", body) == (201, {"id": 1})
    assert _request(server.port, "GET", "/charges") == (200, {"count": 1}), server.log
