"""Compare HTTP servers on raw WSGI with wrk: gevent.pywsgi against ``microback serve``.

    python benchmarks/server/compare.py                      # 3 interleaved rounds, 5 s each
    python benchmarks/server/compare.py --rounds 5 --duration 10

Each server runs raw WSGI (``apps.py``: ``/`` hello, ``/json`` JSON) pinned to CPU 0 with
``taskset -c 0``; wrk runs pinned to CPU 1 (``taskset -c 1 wrk -t1 -c50 -d5s --latency``). The
servers are started once and measured in turn, a-b-a-b, so that drift on the host (thermal,
other load) spreads over all of them; the table gives medians, the ratio to the first server
(the baseline), the median p99 latency, and the server's CPU time per request (user + system,
from /proc: steadier than requests per second when something else runs on the host). Results
are also written as JSON to ``results/``.

Servers:

- ``pywsgi``: gevent.pywsgi with ``TCP_NODELAY`` on its listening socket — the fair baseline.
- ``pywsgi-tuned``: a pywsgi handler subclass with one ``sendall`` per response and a yield
  after each request (what hardening pywsgi could keep at best; ``--servers`` to include it).
- ``microback``: ``microback serve apps:app`` in one process, access log off.

Extra servers: ``--command NAME='shell command with {port}'``. This is a benchmark, not a test:
nothing here asserts speed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PYTHON = sys.executable

SERVERS = {
    "pywsgi": f"{PYTHON} pywsgi_server.py {{port}}",
    "pywsgi-tuned": f"{PYTHON} pywsgi_server.py {{port}} --tuned",
    "microback": f"{PYTHON} -m microback serve apps:app --port {{port}} --log-level warning",
}
DEFAULT_SERVERS = "pywsgi,microback"
ENDPOINTS = {"hello": "/", "json": "/json"}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--servers", default=DEFAULT_SERVERS, help="comma-separated, baseline first"
    )
    parser.add_argument("--command", action="append", default=[], metavar="NAME=CMD")
    parser.add_argument("--endpoints", default="hello,json")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print("wrk is not installed; on Debian or Ubuntu: apt-get install -y wrk", file=sys.stderr)
        return 2
    pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    if not pin:
        print("warning: taskset or a second CPU is missing; running unpinned", file=sys.stderr)

    commands = dict(SERVERS)
    for item in args.command:
        name, _, command = item.partition("=")
        commands[name] = command
    names = args.servers.split(",")
    for name in args.command:
        names.append(name.partition("=")[0])
    endpoints = args.endpoints.split(",")

    processes = {}
    try:
        for name in names:
            port = _free_port()
            command = shlex.split(commands[name].format(port=port))
            if pin:
                command = ["taskset", "-c", "0", *command]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]))
            processes[name] = (
                subprocess.Popen(command, cwd=HERE, env=env, stdout=subprocess.DEVNULL),
                port,
            )
            _wait_until_accepting(port)
        results: dict[str, dict[str, list[dict[str, float]]]] = {
            e: {n: [] for n in names} for e in endpoints
        }
        for endpoint in endpoints:
            for name in names:  # warm up: imports, caches, the first connections
                _wrk(processes[name][1], ENDPOINTS[endpoint], 1, args.connections, pin)
            for round_ in range(args.rounds):
                for name in names:
                    process, port = processes[name]
                    cpu_before = _cpu_seconds(process.pid)
                    run = _wrk(port, ENDPOINTS[endpoint], args.duration, args.connections, pin)
                    cpu = _cpu_seconds(process.pid) - cpu_before
                    run["cpu_us_per_request"] = cpu * 1e6 / max(1.0, run["requests"])
                    results[endpoint][name].append(run)
                    print(
                        f"round {round_ + 1} {endpoint:5} {name:14} {run['rps']:9.0f} req/s"
                        f"  p99 {run['p99_ms']:7.2f} ms"
                        f"  cpu {run['cpu_us_per_request']:5.1f} µs/req"
                        f"  errors {run['errors']:.0f}",
                        flush=True,
                    )
    finally:
        for process, _ in processes.values():
            process.terminate()
            process.wait(timeout=30)

    _report(results, names, args)
    return 0


def _report(
    results: dict[str, dict[str, list[dict[str, float]]]],
    names: list[str],
    args: argparse.Namespace,
) -> None:
    print(
        f"\nmedians of {args.rounds} interleaved runs, {args.connections} connections, "
        f"{args.duration} s each; ratio to {names[0]}"
    )
    print(
        f"{'endpoint':8} {'server':14} {'req/s':>9} {'ratio':>6} {'p99 ms':>8} {'µs/req':>7}"
        f" {'ratio':>6}"
    )
    summary = {}
    for endpoint, by_server in results.items():
        base = statistics.median(r["rps"] for r in by_server[names[0]])
        base_cpu = statistics.median(r["cpu_us_per_request"] for r in by_server[names[0]])
        for name in names:
            rps = statistics.median(r["rps"] for r in by_server[name])
            p99 = statistics.median(r["p99_ms"] for r in by_server[name])
            cpu = statistics.median(r["cpu_us_per_request"] for r in by_server[name])
            summary[f"{endpoint}/{name}"] = {
                "rps": rps,
                "ratio": rps / base,
                "p99_ms": p99,
                "cpu_us_per_request": cpu,
                "cpu_ratio": base_cpu / cpu,
            }
            print(
                f"{endpoint:8} {name:14} {rps:9.0f} {rps / base:5.2f}x {p99:8.2f} {cpu:7.1f}"
                f" {base_cpu / cpu:5.2f}x"
            )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = out / f"compare-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "when": stamp,
                "command": " ".join(sys.argv),
                "rounds": args.rounds,
                "duration_s": args.duration,
                "connections": args.connections,
                "summary": summary,
                "runs": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {path.relative_to(REPO)}")


def _wrk(port: int, path: str, duration: int, connections: int, pin: bool) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    command.append(f"http://127.0.0.1:{port}{path}")
    if pin:
        command = ["taskset", "-c", "1", *command]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if not rps or not p99 or not total:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    failed = sum(int(n) for n in errors.groups()) if errors else 0
    failed += int(non2xx.group(1)) if non2xx else 0
    return {
        "rps": float(rps.group(1)),
        "requests": float(total.group(1)),
        "p99_ms": float(p99.group(1)) * _UNITS[p99.group(2)],
        "errors": float(failed),
    }


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of *pid* so far (Linux): a measure that other load on the
    host disturbs much less than requests per second do."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _wait_until_accepting(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no server on port {port} after {timeout:g} s")


if __name__ == "__main__":
    sys.exit(main())
