"""How fast ``microback serve`` answers a normal client while slow clients attack it.

    python benchmarks/server/slow_clients.py                     # both attacks, ~50 s
    python benchmarks/server/slow_clients.py --attack bodies --repo /path/to/other/checkout

Issue 11 names two attacks on one server process, and a bound for each:

- ``bodies`` (item 7): 1,010 POSTs, each sending its head and one byte of a 100-byte body,
  then one more byte every 10 s; normal requests must be answered with a p99 under 50 ms.
- ``heads`` (item 8): ``--connections 1000`` and 2,000 slowloris sockets (a partial head,
  then a byte every 0.25 s); a client that opens a connection and sends a whole request in
  one write must be answered within 1 s (p99).

During each attack, one client after another opens a connection, sends ``GET /`` and reads
the answer, for *--seconds*; the script prints the latencies (median, p99, max) and how
many were answered within 10 s. *--repo* runs the server from another checkout, to compare
before and after a change. A benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import subprocess
import threading
import time

from compare import HERE, PYTHON, REPO, _free_port, _wait_until_accepting

REQUEST = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
ATTACKS = {
    # name: (server options, sockets, first bytes, seconds between bytes)
    "bodies": (
        [],
        1010,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nx",
        10.0,
    ),
    "heads": (
        ["--connections", "1000", "--header-timeout", "30"],
        2000,
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ",
        0.25,
    ),
}


def _attack(port: int, count: int, first: bytes, every: float, stop: threading.Event) -> None:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(first)
        sock.setblocking(False)
        sockets.append(sock)
    while not stop.wait(every):
        for sock in sockets:
            with contextlib.suppress(OSError):  # cut off by the server
                sock.send(b"v")
    for sock in sockets:
        sock.close()


def _probe(port: int) -> float | None:
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(REQUEST)
            answer = sock.recv(65536)
    except OSError:
        return None
    return time.monotonic() - started if answer.startswith(b"HTTP/1.1 200") else None


def run(name: str, args: argparse.Namespace) -> dict[str, object]:
    options, count, first, every = ATTACKS[name]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROBACK_")}
    env["PYTHONPATH"] = args.repo
    command = [PYTHON, "-m", "microback", "serve", "apps:app", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--log-level", "warning", *options], cwd=HERE, env=env, stdin=subprocess.DEVNULL
    )
    stop = threading.Event()
    try:
        _wait_until_accepting(port)
        attacker = threading.Thread(target=_attack, args=(port, count, first, every, stop))
        attacker.start()
        time.sleep(1.0)  # the attack sockets are open (a few hundred ms)
        latencies: list[float] = []
        failed = 0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            took = _probe(port)
            if took is None:
                failed += 1
            else:
                latencies.append(took)
            time.sleep(0.01)
    finally:
        stop.set()
        server.kill()
        server.wait()
    latencies.sort()
    return {
        "answered": len(latencies),
        "failed": failed,
        "median_ms": _ms(latencies, 0.5),
        "p99_ms": _ms(latencies, 0.99),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
    }


def _ms(latencies: list[float], quantile: float) -> float | None:
    if not latencies:
        return None
    return round(latencies[min(len(latencies) - 1, int(quantile * len(latencies)))] * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(REPO), help="checkout the server runs from")
    parser.add_argument("--attack", choices=[*ATTACKS, "both"], default="both")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    names = list(ATTACKS) if args.attack == "both" else [args.attack]
    print(json.dumps({"repo": args.repo, **{name: run(name, args) for name in names}}, indent=2))


if __name__ == "__main__":
    main()
