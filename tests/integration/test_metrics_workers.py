"""Metrics of ``microback serve --workers 2`` add up over both workers (prometheus-client's
multiprocess mode, with the directory ``microback serve`` makes for the run)."""

from __future__ import annotations

import http.client
import re
import threading
import time
from pathlib import Path

from serving import StartServer, free_port, write_module

APP = """
    import os

    from microback import App, enable_metrics

    app = App(secret_key="metrics-test-secret-key-long-enough")
    enable_metrics(app)


    @app.get("/items/<int:item_id>")
    def item(request, item_id):
        return {"id": item_id, "pid": os.getpid()}
"""

REQUESTS = 1_000
CLIENTS = 10


def _sample(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    match = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    assert match, f"{name}{{{labels}}} not in:\n{text}"
    return float(match.group(1))


def test_metrics_of_two_workers_add_up_after_1000_requests(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "metricsapp.py", APP)
    port = free_port()
    server = start_server("metricsapp:app", "--workers", "2", "--log-level", "warning", port=port)
    pids: list[int] = []
    failures: list[str] = []

    def client(n: int) -> None:
        # A new connection every 10 requests, so the kernel spreads them over both workers.
        for start in range(0, REQUESTS // CLIENTS, 10):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(start, start + 10):
                connection.request("GET", f"/items/{n * 1000 + i}")
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    failures.append(f"{response.status} {body!r}")
                else:
                    pids.append(int(re.search(rb'"pid":(\d+)', body).group(1)))  # type: ignore[union-attr]
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert len(pids) == REQUESTS
    assert len(set(pids)) == 2, "the requests did not reach both workers"

    # Each worker adds its figures to the shared files once a second (and the scraped one at
    # the scrape): within a few seconds the sum is exact, and never more.
    route = 'method="GET",route="/items/<int:item_id>",status="2xx"'
    deadline = time.monotonic() + 10
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        text = response.read().decode()
        connection.close()
        assert response.status == 200
        counted = _sample(text, "microback_requests_total", route)
        assert counted <= REQUESTS
        in_flight = _sample(text, "microback_requests_in_flight")  # the scrape is one
        if (counted, in_flight) == (REQUESTS, 1) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.getheader("Content-Type", "").startswith("text/plain; version=")
    assert counted == REQUESTS
    assert (
        _sample(text, "microback_request_duration_seconds_count", 'route="/items/<int:item_id>"')
        == REQUESTS
    )
    assert "/items/1" not in text  # never the raw path
    assert in_flight == 1
    assert server.process.poll() is None
