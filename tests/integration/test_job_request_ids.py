"""A job carries the id of the request that enqueued it: a real ``microback serve`` takes the
request, a real ``microback worker`` runs the job, and the job's log records carry both ids."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import time
from pathlib import Path

from serving import StartServer, child_env, free_port, microback_command, write_module

APP = """
    import logging

    from microback import App
    from microback.db import Database
    from microback.jobs import Jobs

    app = App(secret_key="job-request-id-test-secret-key-long-enough")
    db = Database(app, "sqlite:///jobs.db")
    jobs = Jobs(app, db)
    db.create_tables()
    logger = logging.getLogger("microback.shop")


    @jobs.task
    def send_receipt(job, order):
        logger.warning("sending the receipt of order %s", order)


    @app.post("/orders/<int:order>")
    def order(request, order):
        return {"job": send_receipt.enqueue(order)}, 201
"""


def test_records_of_a_job_carry_its_id_and_the_enqueuing_requests(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "shop.py", APP)
    server = start_server("shop:app", port=free_port())
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    connection.request("POST", "/orders/7", headers={"X-Request-ID": "checkout-4711"})
    response = connection.getresponse()
    job_id = json.loads(response.read())["job"]
    connection.close()
    assert response.status == 201
    assert response.getheader("X-Request-ID") == "checkout-4711"

    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            microback_command("worker", "shop:app", "--poll-interval", "0.1"),
            cwd=tmp_path,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "sending the receipt" not in log_path.read_text():
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        time.sleep(0.3)  # the job's own "done" line follows
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    text = log_path.read_text()
    ids = f"[job {job_id} request checkout-4711]"
    assert re.search(
        r"WARNING microback\.shop: sending the receipt of order 7 " + re.escape(ids), text
    )
    assert re.search(
        rf"INFO microback\.jobs: job {job_id} \S+ attempt 1/5 done .*{re.escape(ids)}", text
    )
