"""Does a cheap route stay fast while 50 bcrypt logins (cost 12) are in flight?

Starts ``microback serve benchmarks/apps/login.py:app`` (one process), then for each mode
(password checks inline on the event loop, then off-loaded to gevent's thread pool) sends
50 concurrent logins while one client keeps requesting ``GET /ping`` in a loop, and reports
the ping latency percentiles and how long the 50 logins took.

    python benchmarks/login_offload.py [--logins 50]
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start")


def request(port: int, method: str, path: str) -> float:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(method, path)
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 200:
        raise SystemExit(f"{method} {path} answered {response.status}")
    return time.perf_counter() - started


def run_mode(port: int, mode: str, logins: int) -> dict[str, float]:
    pings: list[tuple[float, float]] = []  # (started, latency)
    done = threading.Event()

    def pinger() -> None:
        while not done.is_set():
            pings.append((time.perf_counter(), request(port, "GET", "/ping")))

    login_threads = [
        threading.Thread(target=request, args=(port, "POST", f"/login/{mode}"))
        for _ in range(logins)
    ]
    ping_thread = threading.Thread(target=pinger)
    ping_thread.start()
    time.sleep(0.2)
    started = time.perf_counter()
    for thread in login_threads:
        thread.start()
    for thread in login_threads:
        thread.join()
    finished = time.perf_counter()
    done.set()
    ping_thread.join()
    # Only pings in flight while the logins were; one that waited out the window counts.
    during = [lat for sent, lat in pings if sent + lat >= started and sent < finished]
    cuts = (
        statistics.quantiles(during, n=100, method="inclusive") if len(during) > 1 else during * 99
    )
    return {
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "max": max(during) * 1000,
        "pings": len(during),
        "logins_s": finished - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logins", type=int, default=50)
    options = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "microback",
            "serve",
            "benchmarks/apps/login.py:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, "MICROBACK_SECRET_KEY": "benchmark-" * 4},
    )
    try:
        wait_ready(port)
        request(port, "POST", "/login/offloaded")  # warm up
        print(f"{options.logins} concurrent logins at bcrypt cost 12, one server process")
        print(
            f"{'mode':<10} {'ping p50':>9} {'ping p99':>9} {'ping max':>9} {'pings':>6} "
            f"{'logins took':>12}"
        )
        for mode in ("inline", "offloaded"):
            r = run_mode(port, mode, options.logins)
            print(
                f"{mode:<10} {r['p50']:7.1f}ms {r['p99']:7.1f}ms {r['max']:7.1f}ms "
                f"{r['pings']:6.0f} {r['logins_s']:10.2f}s"
            )
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
