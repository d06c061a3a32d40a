"""Compare HTTP servers on raw WSGI with wrk: ``microback serve`` against gevent.pywsgi,
Granian and uWSGI.

    python benchmarks/server/compare.py                      # 3 interleaved rounds, 5 s each
    python benchmarks/server/compare.py --rounds 5 --duration 10
    python benchmarks/server/compare.py --servers gunicorn-w2,microback-w2   # two workers each

Each one-process server runs raw WSGI (``apps.py``: ``/`` hello, ``/json`` JSON) pinned to CPU 0
with ``taskset -c 0``; wrk runs pinned to CPU 1 (``taskset -c 1 wrk -t1 -c50 -d5s --latency``).
Two-worker servers need both cores, so neither they nor wrk are pinned when they are measured:
wrk shares the cores with them. The servers are started once and measured in turn, a-b-a-b,
so that drift on the host (thermal, other load) spreads over all of them; the table gives
medians, the ratio to the first server (the baseline), the median p99 latency, and the
server's CPU time per request (user + system of the server's process and all its descendants,
from /proc: steadier than requests per second when something else runs on the host). Results
are also written as JSON to ``results/``.

Servers:

- ``pywsgi``: gevent.pywsgi with ``TCP_NODELAY`` on its listening socket — the fair baseline.
- ``pywsgi-tuned``: a pywsgi handler subclass with one ``sendall`` per response and a yield
  after each request (what hardening pywsgi could keep at best; ``--servers`` to include it).
- ``microback``: ``microback serve apps:app`` in one process, access log off.
- ``microback-w2``: ``microback serve apps:app --workers 2`` (a master and two workers), not
  pinned.
- ``gunicorn-w2``: ``gunicorn -k gevent -w 2 apps:app``, the same app, not pinned.
- ``gunicorn-w1``: ``gunicorn -k gevent -w 1 apps:app``, pinned like the one-process servers
  (its idle master shares CPU 0).
- ``granian``: Granian's WSGI interface, one worker, access log off (its own Rust HTTP stack;
  the app runs in its blocking threads, gevent not involved).
- ``granian-w2``: the same with ``--workers 2``, not pinned.
- ``uwsgi``: uWSGI's ``--http11-socket`` (keep-alive), one process, no master, request
  logging off. uWSGI's gevent loop is not used: the pip-built uWSGI aborts under load with it
  (a libev assertion on a closed descriptor).

Granian and uWSGI come with the ``bench`` extra; uWSGI compiles C when it installs. A server
that is not installed is skipped with a message saying so, and the default list
(``pywsgi,microback,granian,uwsgi``) runs with the rest.

Extra servers: ``--command NAME='shell command with {port}'``. This is a benchmark, not a test:
nothing here asserts speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from procstat import process_tree, tree_cpu_seconds

HERE = Path(__file__).resolve().parent
# The TechEmpower runner knows which optional servers are installed (same names as here).
sys.path.append(str(HERE.parent / "techempower"))
from run import installed  # noqa: E402

REPO = HERE.parents[1]
PYTHON = sys.executable

MICROBACK = f"{PYTHON} -m microback serve apps:app --port {{port}} --log-level warning"
GUNICORN = (
    f"{PYTHON} -m gunicorn -k gevent -b 127.0.0.1:{{port}} --log-level warning"
    " --no-control-socket apps:app"
)
GRANIAN = (
    f"{PYTHON} -m granian --interface wsgi --host 127.0.0.1 --port {{port}} --no-access-log"
    " --log-level warning apps:app"
)
UWSGI = str(Path(PYTHON).parent / "uwsgi")
SERVERS = {
    "pywsgi": f"{PYTHON} pywsgi_server.py {{port}}",
    "pywsgi-tuned": f"{PYTHON} pywsgi_server.py {{port}} --tuned",
    "microback": MICROBACK,
    "microback-w2": f"{MICROBACK} --workers 2",
    "gunicorn-w1": f"{GUNICORN} -w 1",
    "gunicorn-w2": f"{GUNICORN} -w 2",
    "granian": f"{GRANIAN} --workers 1",
    "granian-w2": f"{GRANIAN} --workers 2",
    "uwsgi": (
        f"{UWSGI} --http11-socket 127.0.0.1:{{port}} --module apps:app --processes 1"
        " --disable-logging"
    ),
}

#: Servers with worker processes: how many processes serve, beyond their master. Those with
#: more than one are not pinned (two workers on one core would measure nothing useful).
WORKERS = {"microback-w2": 2, "gunicorn-w1": 1, "gunicorn-w2": 2, "granian-w2": 2}
DEFAULT_SERVERS = "pywsgi,microback,granian,uwsgi"
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
    names = [name for name in args.servers.split(",") if installed(name)]
    for item in args.command:
        name = item.partition("=")[0]
        if name not in names:  # named in --servers too: measured once, where it was named
            names.append(name)
    endpoints = args.endpoints.split(",")

    unpinned = [name for name in names if not _pinned(name, pin)]
    if pin and unpinned:
        print(f"not pinned (two workers need both cores; wrk shares them): {', '.join(unpinned)}")
    processes: dict[str, Served] = {}
    try:
        for name in names:
            processes[name] = _start(name, commands[name], _pinned(name, pin))
        results: dict[str, dict[str, list[dict[str, float]]]] = {
            e: {n: [] for n in names} for e in endpoints
        }
        for endpoint in endpoints:
            for name in names:  # warm up: imports, caches, the first connections
                served = processes[name]
                _wrk(served.port, ENDPOINTS[endpoint], 1, args.connections, served.pinned)
            for round_ in range(args.rounds):
                for name in names:
                    run = _measure(processes[name], ENDPOINTS[endpoint], args)
                    results[endpoint][name].append(run)
                    print(
                        f"round {round_ + 1} {endpoint:5} {name:14} {run['rps']:9.0f} req/s"
                        f"  p99 {run['p99_ms']:7.2f} ms"
                        f"  cpu {run['cpu_us_per_request']:5.1f} µs/req"
                        f"  errors {run['errors']:.0f}",
                        flush=True,
                    )
    finally:
        for served in processes.values():
            _stop(served.process)

    _report(results, names, args, {name: commands[name] for name in names}, unpinned)
    return 0


class Served(NamedTuple):
    """A server started for the whole comparison."""

    process: subprocess.Popen[bytes]
    port: int
    pinned: bool


def _pinned(name: str, pin: bool) -> bool:
    """Whether *name* runs on CPU 0 and wrk on CPU 1: not for two workers, which need both."""
    return pin and WORKERS.get(name, 1) == 1


def _start(name: str, command_line: str, pinned: bool) -> Served:
    """Start *name*, and return once it accepts connections and all its workers are up."""
    port = _free_port()
    command = shlex.split(command_line.format(port=port))
    if pinned:
        command = ["taskset", "-c", "0", *command]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]))
    # A session of its own, so that workers left behind can be killed with their master.
    process = subprocess.Popen(
        command, cwd=HERE, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    _wait_until_accepting(port)
    _wait_until_workers(process.pid, WORKERS.get(name, 0))
    return Served(process, port, pinned)


def _measure(served: Served, path: str, args: argparse.Namespace) -> dict[str, float]:
    """One wrk run, with the CPU the server's whole process tree spent during it."""
    cpu_before = tree_cpu_seconds(served.process.pid)
    run = _wrk(served.port, path, args.duration, args.connections, served.pinned)
    cpu = tree_cpu_seconds(served.process.pid) - cpu_before
    run["cpu_us_per_request"] = cpu * 1e6 / max(1.0, run["requests"])
    return run


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server gracefully (its master stops the workers), then kill what is left."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when the denominator is 0 (a server that answered
    nothing, or used less CPU than /proc's 10 ms tick can show)."""
    return numerator / denominator if denominator else None


def _times(value: float | None) -> str:
    return f"{value:5.2f}x" if value is not None else "    - "


def _report(
    results: dict[str, dict[str, list[dict[str, float]]]],
    names: list[str],
    args: argparse.Namespace,
    commands: dict[str, str],
    unpinned: list[str],
) -> None:
    print(
        f"\nmedians of {args.rounds} interleaved runs, {args.connections} connections, "
        f"{args.duration} s each; ratio to {names[0]}"
    )
    if unpinned:
        print(f"not pinned, wrk sharing their cores: {', '.join(unpinned)}")
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
                "ratio": _ratio(rps, base),
                "p99_ms": p99,
                "cpu_us_per_request": cpu,
                "cpu_ratio": _ratio(base_cpu, cpu),
            }
            print(
                f"{endpoint:8} {name:14} {rps:9.0f} {_times(_ratio(rps, base))} {p99:8.2f}"
                f" {cpu:7.1f} {_times(_ratio(base_cpu, cpu))}"
            )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = out / f"compare-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "when": stamp,
                **git_state(),
                "command": " ".join(sys.argv),
                "rounds": args.rounds,
                "duration_s": args.duration,
                "connections": args.connections,
                "unpinned": unpinned,
                "commands": {name: commands[name] for name in names},
                "summary": summary,
                "runs": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {path.relative_to(REPO)}")


def git_state() -> dict[str, object]:
    """The commit measured, and whether ``microback/`` differed from it: the server runs from
    the working tree, so uncommitted changes there are what was measured."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return result.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "microback_dirty": bool(git("status", "--porcelain", "--", "microback")),
    }


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


def _wait_until_workers(pid: int, workers: int, timeout: float = 15.0) -> None:
    """Wait until *pid* has *workers* children: a master accepts before its last worker is up,
    and a run that starts early measures one worker doing the work of two."""
    deadline = time.monotonic() + timeout
    while len(process_tree(pid)) - 1 < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} has not started {workers} workers")
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
