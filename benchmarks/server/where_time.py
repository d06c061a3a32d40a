"""Where a request's time goes: ``microback serve`` against Granian on raw WSGI (issue 19).

    python benchmarks/server/where_time.py                  # microback and granian, /json
    python benchmarks/server/where_time.py --servers microback --duration 5

Each server runs ``apps.py`` pinned to CPU 0, as in ``compare.py`` (access logs off), and wrk
(``-t1 -c50``, keep-alive) on CPU 1. For each server, one wrk run per measure:

- **CPU µs per request**: user + system time of the server's process tree (``procstat.py``).
- **System calls per request**: ``perf stat -e raw_syscalls:sys_enter`` attached to every
  thread of the server (cheap: the server's pace barely changes), then ``strace -c -f`` for
  which calls they are (strace slows the server several times over, so more requests wait
  per turn of its loop, and the loop's own calls, ``epoll_wait``, count less per request than
  at full speed). Both divided by the requests wrk counted in that run.
- **Where the CPU goes, by library**: ``perf record`` samples of the server's threads, shares
  by shared object (the kernel, libpython, httptools, gevent's libev, Granian's Rust code).
- microback only, **Python calls per request**: ``cProfile`` switched on inside the server for
  one run (the server here is ``microback.cli.main(["serve", ...])`` with two signal handlers
  added: SIGUSR1 starts the profile, SIGUSR2 writes it); divided by the calls of
  ``Connection._handle``, one per request. Python functions and C functions (builtins and
  methods) are counted apart.
- microback only, **shares of the time in Python**: ``py-spy record --nonblocking --gil``
  samples, only those taken while the server holds the GIL: a system call (``send``,
  ``recv``, ``epoll_wait``) releases it, so waiting and the kernel's work are left out (perf's
  kernel share is theirs). Each sample is charged to the innermost frame that belongs to one
  part: the parser (``parsing.py`` and llhttp under it), environ building, header writing
  (``response.py``), the app, socket I/O (the Python around the calls), gevent's loop
  (libev, running callbacks: ``Hub.run``), gevent's switches and ``sleep``, the connection
  loop (the rest of ``microback/server``), the rest. cProfile's own times are not used for
  shares: it slows Python calls, not system calls, and greenlet switches confuse its clock.

Needs wrk, perf and strace (``apt-get install -y wrk linux-perf strace``) and py-spy (a
measuring tool only: ``pip install py-spy``); a missing one skips its measure with a message.
Counts and shares are what to compare on a loaded host; the CPU time per request is printed
for reference. Results go to ``results/where-*.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import (  # noqa: E402
    GRANIAN,
    PYTHON,
    REPO,
    Served,
    _measure,
    _start,
    _stop,
    _wrk,
    git_state,
)
from procstat import process_tree  # noqa: E402

#: The profile of microback's run is written here (a fresh name per run of this script).
PROFILE = Path(tempfile.gettempdir()) / f"microback-where-{os.getpid()}.prof"
PROFILED_MICROBACK = (
    f"{PYTHON} {HERE / 'where_time.py'} --serve-profiled {PROFILE} --port {{port}}"
)
SERVERS = {"microback": PROFILED_MICROBACK, "granian": f"{GRANIAN} --workers 1"}

# Parts of the server, by where a frame's code lives; the first match of a frame wins, and a
# sample goes to its innermost frame that matches any.
PARTS: list[tuple[str, re.Pattern[str]]] = [
    # Sending, reading, and waiting for a socket (the switch away is charged here).
    (
        "socket I/O",
        re.compile(
            r"Connection\._(send|wait_and_receive|wait_keepalive)\b|wait_readable"
            r"|gevent/_socket|/socket\.py"
        ),
    ),
    ("parser", re.compile(r"microback/server/(parsing|request_target)\.py|httptools")),
    ("environ", re.compile(r"microback/server/environ\.py")),
    ("header writing", re.compile(r"microback/server/response\.py")),
    ("app", re.compile(r"\(apps\.py|\(json/")),
    ("gevent loop (libev, epoll)", re.compile(r"^Hub\.run ")),
    ("gevent switches, sleep", re.compile(r"gevent/|greenlet")),
    ("connection loop", re.compile(r"microback/server/")),
]
#: gevent's monitor thread (the blocked-loop warning): asleep, though py-spy's non-blocking
#: mode cannot always tell; its samples are left out.
MONITOR = "gevent/_monitor.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="microback,granian")
    parser.add_argument("--path", default="/json")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--serve-profiled", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_profiled:
        return _serve_profiled(args.port, Path(args.serve_profiled))
    if shutil.which("wrk") is None:
        print("wrk is not installed; on Debian or Ubuntu: apt-get install -y wrk", file=sys.stderr)
        return 2
    results: dict[str, dict[str, object]] = {}
    for name in args.servers.split(","):
        served = _start(name, SERVERS[name], pinned=True)
        try:
            _wrk(served.port, args.path, 1, args.connections, True)  # warm up
            results[name] = _examine(name, served, args)
        finally:
            _stop(served.process)
    _write(results, args)
    return 0


def _examine(name: str, served: Served, args: argparse.Namespace) -> dict[str, object]:
    measure = argparse.Namespace(duration=args.duration, connections=args.connections)
    found: dict[str, object] = {}
    run = _measure(served, args.path, measure)
    found["cpu_us_per_request"] = run["cpu_us_per_request"]
    found["rps"] = run["rps"]
    print(f"{name}: {run['rps']:.0f} req/s, {run['cpu_us_per_request']:.1f} µs CPU per request")
    pids = process_tree(served.process.pid)
    if shutil.which("perf"):
        found["syscalls_per_request"] = _perf_syscalls(pids, served, args)
        found["cpu_by_library"] = _perf_libraries(pids, served, args)
    else:
        print("perf is missing (apt-get install -y linux-perf): no syscall count, no libraries")
    if shutil.which("strace"):
        found["strace_per_request"] = _strace(pids, served, args)
    else:
        print("strace is missing (apt-get install -y strace): no breakdown of system calls")
    if name == "microback":
        found["python_calls"] = _python_calls(served, args)
        found["python_shares"] = _pyspy(served, args)
    return found


def _during_wrk(served: Served, args: argparse.Namespace, command: list[str]) -> float:
    """Run *command* (a measuring tool) over one wrk run; return wrk's request count."""
    tool = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attached to every thread before the first request counts
    try:
        run = _wrk(served.port, args.path, args.duration, args.connections, True)
    finally:
        tool.send_signal(signal.SIGINT)
        _, errors = tool.communicate(timeout=60)
    if tool.returncode not in (0, -signal.SIGINT, 130):
        print(f"{command[0]} failed: {errors.decode(errors='replace')[-500:]}", file=sys.stderr)
    return run["requests"]


def _perf_syscalls(pids: list[int], served: Served, args: argparse.Namespace) -> float:
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = ["perf", "stat", "-x,", "-o", out.name, "-e", "raw_syscalls:sys_enter"]
        command += ["-p", ",".join(map(str, pids))]
        requests = _during_wrk(served, args, command)
        text = Path(out.name).read_text()
    counted = [line for line in text.splitlines() if "raw_syscalls:sys_enter" in line]
    total = float(counted[0].split(",")[0]) if counted else 0.0
    per_request = total / requests
    print(f"  system calls per request (perf stat): {per_request:.2f}")
    return per_request


def _perf_libraries(pids: list[int], served: Served, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "perf.data")
        command = ["perf", "record", "-F", "999", "-o", data, "-p", ",".join(map(str, pids))]
        _during_wrk(served, args, command)
        report = subprocess.run(
            ["perf", "report", "-i", data, "--stdio", "--sort", "dso", "--percent-limit", "0.5"],
            capture_output=True,
            text=True,
        ).stdout
    shares = {}
    for line in report.splitlines():
        match = re.match(r"\s+([\d.]+)%\s+(\S+)", line)
        if match:
            shares[Path(match.group(2)).name] = float(match.group(1))
    print("  CPU by library (perf record):")
    for dso, share in shares.items():
        print(f"    {share:5.1f}%  {dso}")
    return shares


def _strace(pids: list[int], served: Served, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = ["strace", "-c", "-f", "-o", out.name]
        for pid in pids:
            command += ["-p", str(pid)]
        requests = _during_wrk(served, args, command)
        text = Path(out.name).read_text()
    calls = {}
    for line in text.splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
            calls[fields[-1]] = int(fields[3]) / requests
    print(f"  under strace ({requests:.0f} requests): per request")
    for call, count in sorted(calls.items(), key=lambda item: -item[1]):
        if count >= 0.01:
            print(f"    {count:6.2f}  {call}")
    print(f"    {sum(calls.values()):6.2f}  in all")
    return calls


def _python_calls(served: Served, args: argparse.Namespace) -> dict[str, object]:
    """cProfile inside the server over one wrk run: calls per request."""
    import pstats

    PROFILE.unlink(missing_ok=True)
    os.kill(served.process.pid, signal.SIGUSR1)
    time.sleep(0.2)
    _wrk(served.port, args.path, args.duration, args.connections, True)
    os.kill(served.process.pid, signal.SIGUSR2)
    for _ in range(100):
        time.sleep(0.2)
        if PROFILE.exists():
            break
    time.sleep(0.5)  # written in full
    stats = pstats.Stats(str(PROFILE)).stats  # type: ignore[attr-defined]
    PROFILE.unlink()
    requests = sum(
        ncalls
        for (file, _, func), (_, ncalls, *_) in stats.items()
        if func == "_handle" and file.endswith("connection.py")
    )
    # Every request is read by one recv() that finds it; each other recv() found nothing, and
    # the connection waited for its client.
    waits = sum(
        ncalls
        for (file, _, func), (_, ncalls, *_) in stats.items()
        if file == "~" and func == "<method 'recv' of '_socket.socket' objects>"
    )
    waits -= requests
    python = builtin = 0
    rows = []
    for (file, line, func), (_, ncalls, *_) in stats.items():
        if file == "~":
            builtin += ncalls
            where = func
        else:
            python += ncalls
            where = f"{func} ({_short(file)}:{line})"
        rows.append((ncalls / requests, where))
    rows.sort(reverse=True)
    print(f"  Python calls per request (cProfile, {requests} requests):")
    print(f"    {python / requests:.1f} Python functions, {builtin / requests:.1f} C functions")
    print(f"    {waits / requests:.2f} reads that found nothing and waited for the client")
    for per, where in rows[:45]:
        print(f"    {per:6.2f}  {where}")
    return {
        "requests": requests,
        "python_functions": python / requests,
        "c_functions": builtin / requests,
        "waits": waits / requests,
        "top": [[where, per] for per, where in rows[:40]],
    }


def _pyspy(served: Served, args: argparse.Namespace) -> dict[str, float]:
    pyspy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not Path(pyspy).exists():
        print("py-spy is missing (pip install py-spy): no shares of Python-level time")
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stacks.txt"
        command = [pyspy, "record", "--nonblocking", "--gil", "--format", "raw", "-r", "500"]
        command += ["-o", str(out), "-p", str(served.process.pid)]
        _during_wrk(served, args, command)
        text = out.read_text() if out.exists() else ""
    by_part: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        if MONITOR not in stack:
            by_part[_part(stack.split(";"))] += int(count)
    total = sum(by_part.values()) or 1
    shares = {part: 100.0 * n / total for part, n in by_part.most_common()}
    print(f"  time holding the GIL, by part (py-spy --gil, {total} samples):")
    for part, share in shares.items():
        print(f"    {share:5.1f}%  {part}")
    return shares


def _part(frames: list[str]) -> str:
    for frame in reversed(frames):
        for part, pattern in PARTS:
            if pattern.search(frame):
                return part
    return "other"


def _short(file: str) -> str:
    for marker in ("microback/", "gevent/", "benchmarks/", "lib/python"):
        at = file.find(marker)
        if at >= 0:
            return file[at:]
    return file


def _write(results: dict[str, dict[str, object]], args: argparse.Namespace) -> None:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = out / f"where-{stamp}.json"
    load = Path("/proc/loadavg").read_text().split()[:3]
    record = {
        "when": stamp,
        **git_state(),
        "command": " ".join(sys.argv),
        "path": args.path,
        "duration_s": args.duration,
        "connections": args.connections,
        "load_average": load,
        "results": results,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nhost load average {' '.join(load)}; written to {path.relative_to(REPO)}")


def _serve_profiled(port: int, path: Path) -> int:
    """``microback serve apps:app`` with a cProfile switched on by SIGUSR1, written by SIGUSR2."""
    import cProfile

    from gevent import monkey

    monkey.patch_all()
    import gevent

    from microback.cli import main as cli

    profile = cProfile.Profile()

    def start() -> None:
        profile.enable()

    def write() -> None:
        profile.disable()
        profile.dump_stats(str(path))

    gevent.signal_handler(signal.SIGUSR1, start)
    gevent.signal_handler(signal.SIGUSR2, write)
    return cli(["serve", "apps:app", "--port", str(port), "--log-level", "warning"])


if __name__ == "__main__":
    sys.exit(main())
