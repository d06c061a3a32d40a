"""Run the six TechEmpower test types and a param route on every implementation and server,
loaded by wrk.

    python benchmarks/techempower/run.py              # the full run (about an hour)
    python benchmarks/techempower/run.py --quick      # smoke test, under two minutes
    python benchmarks/techempower/run.py --tests json,db --servers microback --rounds 5

Implementations: raw WSGI, microback, Falcon, Bottle, Flask (``app_*.py``; those not
installed are skipped). Servers, each started for one implementation at a time:

- ``pywsgi``: gevent.pywsgi, one process, ``TCP_NODELAY`` (``server_pywsgi.py``);
- ``microback``: ``microback serve``, one process;
- ``microback-w2``: ``microback serve --workers 2``, when ``microback serve`` has ``--workers``;
- ``gunicorn-w2``: ``gunicorn -k gevent -w 2``, when gunicorn is installed
  (``gunicorn-w1``, one pinned worker, on request with ``--servers``);
- ``granian``: Granian's WSGI interface, one worker, when Granian is installed (``granian-w2``,
  two workers, on request); the app runs in Granian's blocking threads, without gevent;
- ``uwsgi``: uWSGI ``--http11-socket``, one process, no gevent loop (the pip-built uWSGI
  aborts under load with it), when uWSGI is installed (it compiles C when it installs).

Granian and uWSGI come with the ``bench`` extra; one asked for with ``--servers`` but not
installed is skipped with a message saying so.

One-process servers are pinned to CPU 0 and wrk to CPU 1 (``taskset``); two-worker servers
need both cores, so nothing is pinned for them and wrk shares the cores. Every server is
started fresh for each implementation, checked over HTTP against TechEmpower's rules
(``verify.py``: status, headers, bodies), warmed up for a second on every route, then
measured with ``wrk -t1 -c50 -d5s --latency`` on each test in turn; implementations take
turns (A-B-A-B) for ``--rounds`` rounds. Plaintext is pipelined 16 deep, as TechEmpower
does (without latency figures: wrk's percentiles are wrong with pipelining). The database
tests run on SQLite and, when a server answers, PostgreSQL (database ``microback_bench``,
created and dropped here).

Reported per test, database, server and implementation: requests per second, p50 and p99
latency (medians over the rounds), errors (non-2xx answers and socket errors, summed), the
server's CPU time per request, and each worker's RSS after start-up and at its peak (from
/proc). A full run is saved in ``results/`` as JSON, appended to ``results/history.jsonl``
and rendered by ``render.py`` (``results/latest.md`` and charts).

``--quick`` checks every server and implementation over HTTP, then loads each for one second
on all routes at once and fails (exit status 1) on any error or non-2xx answer. It asserts
correctness, never speed, and saves nothing.

Needs wrk (``apt-get install wrk``) and Linux (/proc, taskset). This is a benchmark: on a
host where other work runs, requests per second move with it; CPU time per request much less.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import importlib.util
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import record
import setup_db
import verify
from suite import DATABASE_TESTS, FRAMEWORKS, LABELS, PATHS

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
SECRET_KEY = "techempower-benchmark-secret-key-0123456789"
POSTGRESQL = "postgresql://postgres@127.0.0.1:5432/postgres"
PACKAGES = {"flask": "flask", "falcon": "falcon", "bottle": "bottle"}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
KEY_FIELDS = ("test", "database", "server", "framework", "connections")


@dataclasses.dataclass(frozen=True)
class Server:
    name: str
    description: str
    workers: int
    command: Callable[[int], list[str]]
    #: gevent.pywsgi sends none; TechEmpower's rules want one (the server's, not the app's).
    sends_server_header: bool = True
    #: uWSGI's HTTP socket sends neither a Server nor a Date header.
    sends_date_header: bool = True


def _microback(workers: int) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        argv = [PYTHON, "-m", "microback", "serve", "wsgi:app", "--port", str(port)]
        argv += ["--log-level", "warning"]  # no access log, as for the other servers
        return argv + (["--workers", str(workers)] if workers > 1 else [])

    return command


def _gunicorn(workers: int) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        argv = [PYTHON, "-m", "gunicorn", "-k", "gevent", "-w", str(workers)]
        argv += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "--no-control-socket"]
        return [*argv, "wsgi:app"]

    return command


def _granian(workers: int) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        argv = [PYTHON, "-m", "granian", "--interface", "wsgi", "--workers", str(workers)]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        return [*argv, "--log-level", "warning", "wsgi:app"]

    return command


UWSGI = str(Path(PYTHON).parent / "uwsgi")


def _uwsgi(port: int) -> list[str]:
    argv = [UWSGI, "--http11-socket", f"127.0.0.1:{port}", "--module", "wsgi:app"]
    return [*argv, "--processes", "1", "--disable-logging"]


SERVERS = {
    "pywsgi": Server(
        "pywsgi",
        "gevent.pywsgi + TCP_NODELAY, 1 process",
        1,
        lambda port: [PYTHON, "server_pywsgi.py", str(port)],
        sends_server_header=False,
    ),
    "microback": Server("microback", "microback serve, 1 process", 1, _microback(1)),
    "microback-w2": Server("microback-w2", "microback serve --workers 2", 2, _microback(2)),
    "gunicorn-w1": Server("gunicorn-w1", "gunicorn -k gevent -w 1", 1, _gunicorn(1)),
    "gunicorn-w2": Server("gunicorn-w2", "gunicorn -k gevent -w 2", 2, _gunicorn(2)),
    "granian": Server("granian", "Granian (WSGI), 1 worker", 1, _granian(1)),
    "granian-w2": Server("granian-w2", "Granian (WSGI), 2 workers", 2, _granian(2)),
    "uwsgi": Server(
        "uwsgi",
        "uWSGI --http11-socket, 1 process",
        1,
        _uwsgi,
        sends_server_header=False,
        sends_date_header=False,
    ),
}
#: What each optional server needs installed: a Python module, or a program (a path).
REQUIRES = {"gunicorn-w1": "gunicorn", "gunicorn-w2": "gunicorn", "uwsgi": UWSGI}
REQUIRES.update({"granian": "granian", "granian-w2": "granian"})


def installed(name: str) -> bool:
    """Whether server *name* can run here; says so when it cannot."""
    needed = REQUIRES.get(name)
    if needed is None:
        return True
    if os.sep in needed:
        found = os.access(needed, os.X_OK)
    else:
        found = importlib.util.find_spec(needed) is not None
    if not found:
        print(
            f"({name} is not installed: skipped; pip install -e '.[bench]',"
            " uWSGI needs a C compiler and Python headers)"
        )
    return found


def available_servers() -> list[str]:
    """The default servers: every one that can run here."""
    names = ["pywsgi", "microback"]
    help_text = subprocess.run(
        [PYTHON, "-m", "microback", "serve", "--help"], capture_output=True, text=True
    ).stdout
    if "--workers" in help_text:
        names.append("microback-w2")
    optional = ["gunicorn-w2", "granian", "uwsgi"]
    return names + [name for name in optional if installed(name)]


def available_frameworks() -> list[str]:
    names = []
    for name in FRAMEWORKS:
        package = PACKAGES.get(name)
        if package and importlib.util.find_spec(package) is None:
            print(f"({LABELS[name]} is not installed: skipped)")
            continue
        names.append(name)
    return names


# --- processes -------------------------------------------------------------------------------


class Running:
    """A server started for one implementation on one database; ``stop()`` ends it."""

    def __init__(self, server: Server, framework: str, url: str, pin: bool, logs: Path) -> None:
        self.server, self.framework = server, framework
        self.port = _free_port()
        argv = server.command(self.port)
        if pin and server.workers == 1:
            argv = ["taskset", "-c", "0", *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MICROBACK_")}
        env.update(
            BENCH_FRAMEWORK=framework,
            DATABASE_URL=url,
            MICROBACK_SECRET_KEY=SECRET_KEY,
            PYTHONPATH=os.pathsep.join(filter(None, [str(record.REPO), env.get("PYTHONPATH")])),
        )
        self.log = logs / f"{server.name}-{framework}.log"
        with self.log.open("w") as log:
            # A session of its own, so that the workers can be found and stopped with it.
            self.process = subprocess.Popen(
                argv,
                cwd=HERE,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                status, _, _ = self.get(PATHS["plaintext"])
                if status == 200 and len(self.workers()) >= self.server.workers:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(
            f"{self.server.name} with {self.framework} did not start; its log says:\n"
            + self.log.read_text()[-2000:]
        )

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, headers, body
        finally:
            connection.close()

    def workers(self) -> list[int]:
        """The processes that serve requests: the children, or the process itself."""
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rpartition(")")[2].split()[1]) == self.process.pid:
                    children.append(int(entry.name))
        return children or [self.process.pid]

    def rss_mb(self, field: str = "VmRSS") -> float:
        """The largest ``field`` (VmRSS now, VmHWM at peak) among the workers, in MB."""
        values = [0.0]
        for pid in self.workers():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
            if match:
                values.append(int(match.group(1)) / 1024)
        return round(max(values), 1)

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server's processes so far."""
        total = 0.0
        for pid in {self.process.pid, *self.workers()}:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # workers left behind, if any
        self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- checks and load -------------------------------------------------------------------------


def check_over_http(running: Running, tests: list[str]) -> list[str]:
    """TechEmpower's rules, over HTTP, for each of ``tests``: the problems found."""
    found = []
    for test in tests:
        path = PATHS[test]
        status, headers, body = running.get(path)
        queries = path.partition("queries=")[2] or None
        for problem in verify.problems(
            test, status, headers, body, queries=queries, server_headers=True
        ):
            if problem == "no Server header" and not running.server.sends_server_header:
                continue  # the server's omission, noted in the report
            if problem == "no Date header" and not running.server.sends_date_header:
                continue
            found.append(f"{path}: {problem}")
    return found


def wrk(
    port: int,
    path: str,
    duration: int,
    connections: int,
    pin: bool,
    script: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Load ``path`` with wrk; return requests/s, latency percentiles and errors."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        command += ["-s", str(HERE / script[0])]
    command.append(f"http://127.0.0.1:{port}{path}")
    if script[1:]:
        command += ["--", *script[1:]]
    if pin:
        command = ["taskset", "-c", "1", *command]
    return parse_wrk(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, total requests, p50 and p99 latency (ms) and errors from wrk's output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not rps or not total:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    latency = {}
    for percent in ("50", "99"):
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        value = float(match.group(1)) * _UNITS[match.group(2)] if match else 0.0
        # wrk prints "0.00us" for percentiles it has no sample for (with pipelining).
        latency[percent] = round(value, 3) or None
    errors = {"non2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets:
        for key, value in zip(
            ("connect", "read", "write", "timeout"), sockets.groups(), strict=True
        ):
            errors[key] = int(value)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        errors["non2xx"] = int(non2xx.group(1))
    return {
        "rps": round(float(rps.group(1)), 1),
        "requests": int(total.group(1)),
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "errors": errors,
    }


# --- databases -------------------------------------------------------------------------------


def prepare_databases(names: list[str], postgresql: str, tmp: Path) -> dict[str, str]:
    urls = {}
    for name in names:
        if name == "sqlite":
            urls["sqlite"] = setup_db.fill_sqlite(tmp / "bench.db")
        elif name == "postgresql":
            try:
                urls["postgresql"] = setup_db.fill_postgresql(postgresql)
            except Exception as exc:
                print(f"(PostgreSQL skipped: {str(exc).strip().splitlines()[0]})")
        else:
            raise SystemExit(f"unknown database {name!r}: use sqlite and/or postgresql")
    return urls


# --- the two modes ---------------------------------------------------------------------------


def plan_tests(tests: list[str], urls: dict[str, str]) -> dict[str, list[str]]:
    """The tests to run on each database: those without one run on the first database only."""
    first = next(iter(urls))
    plan = {
        database: [t for t in tests if t in DATABASE_TESTS or database == first]
        for database in urls
    }
    return {database: tests for database, tests in plan.items() if tests}


def quick(options: argparse.Namespace, urls: dict[str, str], logs: Path) -> int:
    failures = []
    print(
        f"{'server':13} {'framework':10} {'database':10} {'checked':>7} {'load':>9} {'RSS MB':>7}"
    )
    for database, tests in plan_tests(options.tests, urls).items():
        url = urls[database]
        paths = [PATHS[test] for test in tests]
        for server in options.servers:
            for framework in options.frameworks:
                label = f"{server:13} {LABELS[framework]:10} {database:10}"
                try:
                    running = Running(SERVERS[server], framework, url, options.pin, logs)
                except RuntimeError as exc:
                    failures.append(f"{server} / {LABELS[framework]} / {database}: {exc}")
                    print(f"{label} did not start")
                    continue
                try:
                    problems = check_over_http(running, tests)
                    run = wrk(
                        running.port,
                        "",
                        1,
                        16,
                        options.pin and SERVERS[server].workers == 1,
                        ("mixed.lua", *paths),
                    )
                    rss = running.rss_mb("VmHWM")
                finally:
                    running.stop()
                errors = {k: v for k, v in run["errors"].items() if v}
                if errors:
                    problems.append(f"under load: {errors}")
                if run["requests"] == 0:
                    problems.append("under load: no request answered")
                failures += [f"{server} / {LABELS[framework]} / {database}: {p}" for p in problems]
                verdict = "ok" if not problems else "FAILED"
                print(f"{label} {verdict:>7} {run['requests']:>5} req {rss:7.1f}", flush=True)
    if failures:
        print("\nFailures:")
        for failure in failures:
            print(f"- {failure}")
        return 1
    print("\nEvery response was 200 and well-formed.")
    if "pywsgi" in options.servers:
        print("(gevent.pywsgi sends no Server header; the rules ask for one: not counted.)")
    if "uwsgi" in options.servers:
        print("(uWSGI sends no Server and no Date header; the rules ask for both: not counted.)")
    return 0


def full(options: argparse.Namespace, urls: dict[str, str], logs: Path) -> int:
    first = next(iter(urls))
    plan = plan_tests(options.tests, urls)
    instances = options.rounds * len(options.servers) * len(options.frameworks)
    measurements = sum(len(tests) for tests in plan.values()) * len(options.connections)
    measurements *= instances
    minutes = (measurements * (options.duration + 0.3) + instances * len(plan) * 3) / 60
    print(
        f"{measurements} measurements of {options.duration} s: about {minutes:.0f} minutes\n",
        flush=True,
    )
    runs, servers, failures = [], [], []
    for database, url in urls.items():
        if database not in plan:
            continue
        paths = [PATHS[test] for test in plan[database]]
        for round_ in range(1, options.rounds + 1):
            for server_name in options.servers:
                server = SERVERS[server_name]
                pin = options.pin and server.workers == 1
                for framework in options.frameworks:
                    try:
                        running = Running(server, framework, url, options.pin, logs)
                    except RuntimeError as exc:
                        failures.append(f"{server_name}/{framework}: {exc}")
                        print(f"{server_name} {framework}: NOT MEASURED, did not start")
                        continue
                    try:
                        rss_start = running.rss_mb()
                        problems = check_over_http(running, plan[database])
                        if problems:
                            failures += [f"{server_name}/{framework}: {p}" for p in problems]
                            print(f"{server_name} {framework}: NOT MEASURED, wrong: {problems}")
                            continue
                        wrk(running.port, "", 1, 50, pin, ("mixed.lua", *paths))  # warm-up
                        for test in plan[database]:
                            for connections in options.connections:
                                script: tuple[str, ...] = ()
                                if test == "plaintext" and options.pipeline > 1:
                                    script = ("pipeline.lua", str(options.pipeline))
                                cpu = running.cpu_seconds()
                                run = wrk(
                                    running.port,
                                    PATHS[test],
                                    options.duration,
                                    connections,
                                    pin,
                                    script,
                                )
                                cpu = running.cpu_seconds() - cpu
                                if script:
                                    # wrk times a pipelined batch, not a request, and its
                                    # percentiles are then wrong (99% prints 0): none kept.
                                    run["p50_ms"] = run["p99_ms"] = None
                                run["cpu_us"] = round(cpu * 1e6 / max(1, run["requests"]), 1)
                                run.update(
                                    test=test,
                                    database=database if test in DATABASE_TESTS else None,
                                    server=server_name,
                                    framework=framework,
                                    connections=connections,
                                    round=round_,
                                )
                                runs.append(run)
                                errors = sum(run["errors"].values())
                                # Kept small: the total, or the kinds that happened.
                                run["errors"] = {k: v for k, v in run["errors"].items() if v}
                                print(
                                    f"{database:10} r{round_} {server_name:12} "
                                    f"{LABELS[framework]:9} {test:9} c{connections:<4}"
                                    f" {run['rps']:9.0f} req/s  p99 {run['p99_ms'] or '-'} ms"
                                    f"  {run['cpu_us']:6.1f} µs cpu"
                                    + (f"  ERRORS {errors}" if errors else ""),
                                    flush=True,
                                )
                        servers.append(
                            {
                                "server": server_name,
                                "framework": framework,
                                "database": database,
                                "round": round_,
                                "workers": len(running.workers()),
                                "rss_start_mb": rss_start,
                                "rss_peak_mb": running.rss_mb("VmHWM"),
                            }
                        )
                    finally:
                        running.stop()
    summary = summarize(runs, servers, first)
    data = {
        "options": {
            "tests": options.tests,
            "databases": list(urls),
            "servers": {name: SERVERS[name].description for name in options.servers},
            "frameworks": options.frameworks,
            "rounds": options.rounds,
            "duration_s": options.duration,
            "connections": options.connections,
            "pipeline": options.pipeline,
            "pinned": options.pin,
            "command": " ".join(["python", "benchmarks/techempower/run.py", *sys.argv[1:]]),
        },
        "failures": failures,
        "instances": servers,
        "runs": by_round(runs),
    }
    if options.save:
        import render

        path = record.save("http", data, summary)
        print(f"\nwritten to {path.relative_to(record.REPO)} and results/history.jsonl")
        for written in render.render():
            print(f"rendered {written.relative_to(record.REPO)}")
    if failures:
        print("\nNot measured, failed verification:\n- " + "\n- ".join(failures))
    return 1 if failures else 0


def by_round(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The measurements, one entry per test, database, server, implementation and connections,
    with a list of each figure in round order: the raw data, kept small."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: r["round"]):
        key = (run["test"], run["database"], run["server"], run["framework"], run["connections"])
        group = groups.setdefault(key, dict(zip(KEY_FIELDS, key, strict=True)))
        for field in ("rps", "requests", "p50_ms", "p99_ms", "cpu_us", "errors"):
            group.setdefault(field, []).append(run[field])
    return list(groups.values())


def error_kinds(runs: list[dict[str, Any]]) -> dict[str, int]:
    """Errors of each kind (non2xx, connect, read, write, timeout) summed over ``runs``."""
    kinds: dict[str, int] = {}
    for run in runs:
        for kind, count in run["errors"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    return kinds


def summarize(
    runs: list[dict[str, Any]], servers: list[dict[str, Any]], first_database: str
) -> list[dict[str, Any]]:
    """Medians over the rounds for each test, database, server, implementation, connections.

    Memory is per server instance: the tests without a database ran on ``first_database``'s.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        key = (run["test"], run["database"], run["server"], run["framework"], run["connections"])
        groups.setdefault(key, []).append(run)
    memory: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for instance in servers:
        key = (instance["server"], instance["framework"], instance["database"])
        memory.setdefault(key, []).append(instance)
    summary = []
    for (test, database, server, framework, connections), group in groups.items():
        instances = memory.get((server, framework, database or first_database), [])

        def median(key: str, items: list[dict[str, Any]]) -> float | None:
            values = [item[key] for item in items if item[key] is not None]
            return round(statistics.median(values), 2) if values else None

        summary.append(
            {
                "test": test,
                "database": database,
                "server": server,
                "framework": framework,
                "connections": connections,
                "rounds": len(group),
                "rps": median("rps", group),
                "p50_ms": median("p50_ms", group),
                "p99_ms": median("p99_ms", group),
                "cpu_us": median("cpu_us", group),
                "errors": sum(sum(run["errors"].values()) for run in group),
                "error_kinds": error_kinds(group),
                "rss_start_mb": median("rss_start_mb", instances),
                "rss_peak_mb": median("rss_peak_mb", instances),
            }
        )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: correctness only")
    parser.add_argument("--servers", help=f"comma-separated, of {', '.join(SERVERS)}")
    parser.add_argument("--frameworks", help=f"comma-separated, of {', '.join(FRAMEWORKS)}")
    parser.add_argument("--tests", default=",".join(PATHS), help="comma-separated test types")
    parser.add_argument("--databases", help="sqlite,postgresql (default; --quick: sqlite)")
    parser.add_argument("--postgresql", default=POSTGRESQL, metavar="SERVER_URL")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--connections", default="50", help="comma-separated: 1,10,100,1000")
    parser.add_argument("--pipeline", type=int, default=16, help="plaintext pipelining depth")
    parser.add_argument("--no-save", dest="save", action="store_false")
    options = parser.parse_args()

    if shutil.which("wrk") is None:
        print("wrk is not installed; on Debian or Ubuntu: apt-get install -y wrk", file=sys.stderr)
        return 2
    options.pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    if not options.pin:
        print("warning: taskset or a second CPU is missing; nothing is pinned", file=sys.stderr)
    options.servers = options.servers.split(",") if options.servers else available_servers()
    options.frameworks = (
        options.frameworks.split(",") if options.frameworks else available_frameworks()
    )
    options.tests = options.tests.split(",")
    options.connections = [int(c) for c in options.connections.split(",")]
    unknown = [s for s in options.servers if s not in SERVERS]
    unknown += [f for f in options.frameworks if f not in FRAMEWORKS]
    unknown += [t for t in options.tests if t not in PATHS]
    if unknown:
        parser.error(f"unknown server, framework or test: {', '.join(unknown)}")
    options.servers = [name for name in options.servers if installed(name)]
    databases = options.databases or ("sqlite" if options.quick else "sqlite,postgresql")
    with tempfile.TemporaryDirectory(prefix="techempower-") as tmp:
        urls = prepare_databases(databases.split(","), options.postgresql, Path(tmp))
        if not urls:
            raise SystemExit("no database to run on")
        try:
            if options.quick:
                return quick(options, urls, Path(tmp))
            return full(options, urls, Path(tmp))
        finally:
            if "postgresql" in urls:
                setup_db.drop_postgresql(options.postgresql)


if __name__ == "__main__":
    sys.exit(main())
