"""What keep-alive clients that never retry see while ``microback serve`` reloads or stops.

    python benchmarks/server/drain.py                        # 10 SIGHUPs 1.5 s apart, 1 SIGTERM
    python benchmarks/server/drain.py --repo /path/to/other/checkout   # an older server

Issue 11 (item 6): threads of ``http.client`` keep-alive GETs (one connection each, a new one
only when the server said ``Connection: close`` or a request failed, and no request sent
again) against ``microback serve apps:app --workers 2``, while the master gets SIGHUPs; then a
fresh server under the same load gets one SIGTERM. Each failed request is counted by what the
client saw: ``lost`` (the request was sent and the connection closed without an answer:
``RemoteDisconnected``, a reset, a broken pipe; on a reused keep-alive connection or on a new
one) or ``refused`` (a new connection refused, which after a stop is the expected answer).
*--repo* runs the server from another checkout, to compare before and after a change. A
benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter

from compare import HERE, PYTHON, REPO, _free_port, _wait_until_accepting, _wait_until_workers

LOST = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Clients:
    """*threads* keep-alive clients that never send a request again; counts what they saw."""

    def __init__(self, port: int, threads: int) -> None:
        self.port = port
        self.answered = 0
        self.failures: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        used = False
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                used = False
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                response.read()
                outcome = "answered" if response.status == 200 else f"status {response.status}"
                close = response.will_close
            except LOST as exc:
                where = "a reused connection" if used else "a new connection"
                outcome, close = f"lost on {where} ({type(exc).__name__})", True
            except ConnectionRefusedError:
                outcome, close = "refused", True
                time.sleep(0.01)
            except OSError as exc:
                outcome, close = f"other ({type(exc).__name__})", True
            with self._lock:
                if outcome == "answered":
                    self.answered += 1
                else:
                    self.failures[outcome] += 1
            used = True
            if close:
                connection.close()
                connection = None

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def _start(repo: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROBACK_")}
    env["PYTHONPATH"] = repo
    env["MICROBACK_SECRET_KEY"] = "drain-benchmark-" + "k" * 32
    command = [PYTHON, "-m", "microback", "serve", "apps:app", "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=HERE, env=env, stdin=subprocess.DEVNULL)
    _wait_until_accepting(port)
    _wait_until_workers(process.pid, workers)
    return process


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as file:
            return {int(child) for child in file.read().split()}
    except OSError:
        return set()


def reloads(args: argparse.Namespace) -> dict[str, object]:
    port = _free_port()
    server = _start(args.repo, port, args.workers)
    clients = Clients(port, args.threads)
    try:
        for _ in range(args.reloads):
            time.sleep(args.interval)
            server.send_signal(signal.SIGHUP)
        time.sleep(args.interval)
    finally:
        clients.stop()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    return {"answered": clients.answered, "failures": dict(clients.failures)}


def stop(args: argparse.Namespace) -> dict[str, object]:
    port = _free_port()
    server = _start(args.repo, port, args.workers)
    workers = _children(server.pid)
    clients = Clients(port, args.threads)
    try:
        time.sleep(args.interval)
        server.send_signal(signal.SIGTERM)
        started = time.monotonic()
        server.wait(timeout=60)
        took = time.monotonic() - started
        time.sleep(0.5)  # the clients now find the port closed
    finally:
        clients.stop()
    return {
        "answered": clients.answered,
        "failures": dict(clients.failures),
        "stop_seconds": round(took, 2),
        "workers_left": sorted(pid for pid in workers if os.path.exists(f"/proc/{pid}")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(REPO), help="checkout the server runs from")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reloads", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.5)
    args = parser.parse_args()
    result = {"repo": args.repo, "sighup": reloads(args), "sigterm": stop(args)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
