"""Idle memory of one server worker: after start-up, and with 10,000 idle keep-alive connections.

    python benchmarks/server/footprint.py                        # microback, gunicorn, pywsgi
    python benchmarks/server/footprint.py --servers microback --connections 20000

Issue 6 asks what a ``microback serve`` worker costs at rest and per idle connection (the goal:
10,000 idle keep-alive connections in under 300 MB). For each server, in turn, this starts it
alone serving raw WSGI (``apps.py``), sends one request and reads the worker's ``VmRSS`` (and
``VmHWM``, its peak) from /proc; then opens the connections, each sending one
``GET / HTTP/1.1`` and reading the answer, keeps them all open and idle, and reads them again.
The server's connection cap and idle timeout are raised so that it keeps them all for the
whole measurement, and the script checks that it did (its open file descriptors, and that no
client socket was closed). The figures are printed as a table and written as JSON to
``results/``. A benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from compare import (
    HERE,
    PYTHON,
    REPO,
    _free_port,
    _stop,
    _wait_until_accepting,
    _wait_until_workers,
    git_state,
)
from procstat import open_fds, process_tree, status_kb

#: Idle connections last this long on every server: longer than any measurement.
IDLE_TIMEOUT = 600
SERVERS = {
    "microback": (
        f"{PYTHON} -m microback serve apps:app --port {{port}} --log-level warning"
        f" --connections {{cap}} --keepalive-timeout {IDLE_TIMEOUT}"
    ),
    "gunicorn-w1": (
        f"{PYTHON} -m gunicorn -k gevent -w 1 -b 127.0.0.1:{{port}} --log-level warning"
        f" --no-control-socket --worker-connections {{cap}} --keep-alive {IDLE_TIMEOUT} apps:app"
    ),
    # No connection cap and no idle timeout to raise: gevent.pywsgi has neither by default.
    "pywsgi": f"{PYTHON} pywsgi_server.py {{port}}",
}
#: Processes beyond the first that serve: gunicorn's worker under its master.
WORKERS = {"gunicorn-w1": 1}
GOAL_MB = 300
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated")
    parser.add_argument("--connections", type=int, default=10_000, help="idle connections")
    parser.add_argument("--threads", type=int, default=16, help="threads opening them")
    args = parser.parse_args()

    limit = _raise_open_files_limit()
    if limit < args.connections + 100:
        print(f"the open-files limit is {limit}: too low for {args.connections}", file=sys.stderr)
        return 2
    results = {}
    for name in args.servers.split(","):
        results[name] = _measure(name, args.connections, args.threads)
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    _report(results, args)
    return 0


def _raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to the hard one, and return it.

    The client needs one descriptor per connection, and the servers inherit the limit, so
    each can hold as many (``microback serve`` and gunicorn raise nothing themselves).
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _measure(name: str, connections: int, threads: int) -> dict[str, Any]:
    """Start *name*, read its worker's memory at rest, then with *connections* idle ones."""
    port = _free_port()
    command = shlex.split(SERVERS[name].format(port=port, cap=connections + 2000))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]))
    process = subprocess.Popen(
        command, cwd=HERE, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    clients: list[socket.socket] = []
    try:
        _wait_until_accepting(port)
        _wait_until_workers(process.pid, WORKERS.get(name, 0))
        worker = process_tree(process.pid)[-1]  # the master's child, or the process itself
        with socket.create_connection(("127.0.0.1", port)) as sock:
            _request(sock)
        time.sleep(0.5)
        at_rest = _memory(process.pid, worker)
        started = time.monotonic()
        clients = _open_idle(port, connections, threads)
        opening_s = time.monotonic() - started
        time.sleep(1.0)  # let the server settle: every connection read, answered, waiting
        idle = _memory(process.pid, worker)
        closed = sum(not _still_open(sock) for sock in clients)
        grown_kb = (idle["worker_rss_kb"] or 0) - (at_rest["worker_rss_kb"] or 0)
        return {
            "command": shlex.join(command),
            "startup": at_rest,
            "idle": idle,
            "connections": connections,
            "open_s": round(opening_s, 2),
            "closed_by_server": closed,
            "kb_per_connection": round(grown_kb / connections, 2),
        }
    finally:
        for sock in clients:
            sock.close()
        _stop(process)


def _memory(master: int, worker: int) -> dict[str, int | None]:
    """The worker's RSS now and at peak, its open descriptors, and the RSS of the whole tree
    (for gunicorn, the master's too: what the machine pays)."""
    tree = process_tree(master)
    return {
        "worker_rss_kb": status_kb(worker, "VmRSS"),
        "worker_hwm_kb": status_kb(worker, "VmHWM"),
        "worker_fds": open_fds(worker),
        "total_rss_kb": sum(status_kb(pid, "VmRSS") or 0 for pid in tree),
    }


def _open_idle(port: int, count: int, threads: int) -> list[socket.socket]:
    """*count* keep-alive connections to *port*, each having completed one request.

    A few threads, each opening its share one after another: at most *threads* handshakes
    are pending at once, so the listen backlog never overflows into SYN retries (seconds
    each), and 10,000 connections take a few seconds.
    """
    shares = [count // threads + (i < count % threads) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        batches = list(pool.map(lambda n: [_connect(port) for _ in range(n)], shares))
    return [sock for batch in batches for sock in batch]


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        _request(sock)
    except BaseException:
        sock.close()
        raise
    return sock


def _request(sock: socket.socket) -> None:
    """Send ``GET /`` and read the whole answer; fail unless it is a 200 that keeps the
    connection open."""
    sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    if not lines[0].startswith("HTTP/1.1 200") or headers.get("connection") == "close":
        raise RuntimeError(f"unexpected answer: {head!r}")
    while len(body) < int(headers.get("content-length", "0")):
        body += _recv(sock)


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise RuntimeError("the server closed the connection")
    return chunk


def _still_open(sock: socket.socket) -> bool:
    """Whether the server has left *sock* open: nothing to read, and no end of stream."""
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))  # data: open, if unexpected
    except BlockingIOError:
        return True
    except OSError:
        return False


def _report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\none worker, idle, after one request; then {args.connections:,} keep-alive"
        " connections that each completed one request and now sit idle"
    )
    print(
        f"{'server':12} {'rest MB':>8} {'peak MB':>8} {'idle MB':>8} {'peak MB':>8}"
        f" {'KB/conn':>8} {'total MB':>9} {'fds':>6} {'closed':>6}  under {GOAL_MB} MB"
    )
    for name, result in results.items():
        rest, idle = result["startup"], result["idle"]
        under = (idle["worker_rss_kb"] or 0) / 1024 < GOAL_MB
        print(
            f"{name:12} {_mb(rest['worker_rss_kb']):>8} {_mb(rest['worker_hwm_kb']):>8}"
            f" {_mb(idle['worker_rss_kb']):>8} {_mb(idle['worker_hwm_kb']):>8}"
            f" {result['kb_per_connection']:8.1f} {_mb(idle['total_rss_kb']):>9}"
            f" {idle['worker_fds']:6} {result['closed_by_server']:6}  {'yes' if under else 'no'}"
        )
        result["under_goal"] = under
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = out / f"footprint-{stamp}.json"
    record = {
        "when": stamp,
        **git_state(),
        "command": " ".join(sys.argv),
        "connections": args.connections,
        "goal_mb": GOAL_MB,
        "servers": results,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwritten to {path.relative_to(REPO)}")


def _mb(kb: int | None) -> str:
    return f"{kb / 1024:.1f}" if kb is not None else "-"


if __name__ == "__main__":
    sys.exit(main())
