"""Write throughput on SQLite under ``microback serve``: one worker and two.

Each request is ``POST /notes`` in the request's transaction (one INSERT, committed). Client
threads on keep-alive connections send them back to back for a fixed time while one more
thread times ``GET /count`` now and then; the figures are committed writes per second, the
503s, and the latencies of writes and reads.

    python benchmarks/sqlite_writes.py [--seconds 5] [--clients 20] [--workers 1 2]

SQLite has one write lock per database: the workers queue for it (cooperatively, so reads go
on meanwhile), which is what these numbers show. No wrk: the clients are Python threads, so
on a small machine they take CPU from the server too; compare the two rows, not other hosts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

APP = """
from microback import App
from microback.db import Database, fields

app = App(secret_key="sqlite-writes-benchmark-secret-0123456789")
db = Database(app, "sqlite:///notes.db")


class Note(db.Model):
    text = fields.TextField()


db.create_tables()


@app.post("/notes")
def create(request):
    return Note.create(text=request.json["text"]).to_dict(), 201


@app.get("/count")
def count(request):
    return {"notes": Note.select().count()}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(directory: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    (directory / "notes_app.py").write_text(APP)
    subprocess.run([sys.executable, "-c", "import notes_app"], cwd=directory, check=True)
    port = free_port()
    command = [sys.executable, "-m", "microback", "serve", "notes_app.py:app"]
    command += ["--port", str(port), "--log-level", "warning"]
    if workers > 1:
        command += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(command, cwd=directory, env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server, port
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("microback serve did not start")


def load(port: int, clients: int, seconds: float) -> dict[str, float]:
    writes: list[float] = []
    reads: list[float] = []
    refused = [0]
    stop = time.monotonic() + seconds
    body = json.dumps({"text": "benchmark"})
    headers = {"Content-Type": "application/json"}

    def writer() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            started = time.monotonic()
            connection.request("POST", "/notes", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status == 201:
                writes.append(time.monotonic() - started)
            else:
                refused[0] += 1
        connection.close()

    def reader() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            started = time.monotonic()
            connection.request("GET", "/count")
            connection.getresponse().read()
            reads.append(time.monotonic() - started)
            time.sleep(0.02)
        connection.close()

    threads = [threading.Thread(target=writer) for _ in range(clients)]
    threads.append(threading.Thread(target=reader))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    quantiles = statistics.quantiles(writes, n=100)
    return {
        "writes/s": len(writes) / seconds,
        "503": refused[0],
        "write p50 ms": quantiles[49] * 1000,
        "write p99 ms": quantiles[98] * 1000,
        "read p50 ms": statistics.median(reads) * 1000,
        "read max ms": max(reads) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    options = parser.parse_args()
    print(f"{options.clients} writers on keep-alive connections, {options.seconds:g} s each")
    for workers in options.workers:
        with tempfile.TemporaryDirectory() as directory:
            server, port = start(Path(directory), workers)
            try:
                result = load(port, options.clients, options.seconds)
            finally:
                server.terminate()
                server.wait(timeout=30)
        figures = ", ".join(f"{name} {value:.0f}" for name, value in result.items())
        print(f"workers={workers}: {figures}")


if __name__ == "__main__":
    main()
