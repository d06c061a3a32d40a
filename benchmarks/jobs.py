"""Background jobs: trivial jobs per second, microback.jobs vs plain huey on the same database.

For SQLite and PostgreSQL, with 1 and 2 worker processes (10 greenlets each), both systems in
turn (A-B-A-B, medians of ``--rounds``): the workers are started on an empty queue, then
``--jobs`` trivial jobs are enqueued in one transaction, and the clock runs from that commit
until the queue is empty.

- microback: ``microback worker bench:app --workers N --concurrency 10`` (leases: a row is
  deleted when its job has run; at least once);
- plain huey: huey's ``Consumer`` with 10 greenlet workers on huey's ``SqlStorage`` (a row is
  deleted when a worker takes it; at most once), polling as often as microback's worker
  (every 0.05 s when idle), N processes; on SQLite with the pragmas microback sets (WAL,
  ``synchronous=NORMAL``), so that the storages are compared rather than the journal modes.

Then the enqueue cost inside a request over HTTP on PostgreSQL: ``microback serve`` (one
process), a POST that enqueues one job against one that does not (which then commits
nothing), and a POST that writes a row and enqueues against one that only writes the row (the
usual case: the enqueue joins a transaction that commits anyway); sequential keep-alive
requests from one client, mean time per request.

    python benchmarks/jobs.py [--jobs 2000] [--rounds 3] [--postgresql postgresql://...]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 10
POLL = 0.05
QUIET = ("--log-level", "warning")

APP = """
    from microback import App
    from microback.db import Database, fields
    from microback.jobs import Jobs

    app = App(secret_key="a-benchmark-secret-key-long-enough-to-sign")
    db = Database(app, "sqlite:///unused.db", max_connections=40)  # DATABASE_URL wins
    jobs = Jobs(app, db)


    @jobs.task
    def trivial(job, n):
        pass


    @app.post("/enqueue")
    def enqueue(request):
        trivial.enqueue(1)
        return {"ok": True}


    @app.post("/plain")
    def plain(request):
        return {"ok": True}


    class Order(db.Model):
        n = fields.IntegerField()


    @app.post("/write")
    def write(request):
        Order.create(n=1)
        return {"ok": True}


    @app.post("/write-enqueue")
    def write_enqueue(request):
        Order.create(n=1)
        trivial.enqueue(1)
        return {"ok": True}
"""

HUEY = """
    import os

    from huey.contrib.sql_huey import SqlHuey

    from peewee import SqliteDatabase

    url = os.environ["HUEY_URL"]
    if url.startswith("sqlite:///"):
        # The pragmas microback.db sets, so that the storage is compared, not the journal.
        pragmas = {"journal_mode": "wal", "synchronous": "normal", "busy_timeout": 5000}
        url = SqliteDatabase(url[len("sqlite:///") :], pragmas=pragmas)
    huey = SqlHuey("bench", database=url, results=False)


    @huey.task()
    def trivial(n):
        pass
"""


def huey_consumer(workers: int) -> None:
    """Run plain huey's consumer (greenlet workers), patched first as huey's docs ask."""
    from gevent import monkey

    monkey.patch_all()
    import logging

    import bench_huey  # type: ignore[import-not-found]

    logging.basicConfig(level=logging.WARNING)
    consumer = bench_huey.huey.create_consumer(
        workers=workers,
        worker_type="greenlet",
        initial_delay=POLL,
        max_delay=POLL,
        backoff=1.0,
        periodic=False,
    )
    consumer.run()


def env_for(url: str, directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROBACK_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(directory)])
    env["DATABASE_URL"] = url
    env["HUEY_URL"] = url
    return env


def start_microback(url: str, directory: Path, processes: int) -> list[subprocess.Popen[bytes]]:
    args = [sys.executable, "-m", "microback", "worker", "bench:app"]
    args += ["--concurrency", str(CONCURRENCY), "--poll-interval", str(POLL)]
    args += ["--log-level", "warning"]
    if processes > 1:
        args += ["--workers", str(processes)]
    return [subprocess.Popen(args, cwd=directory, env=env_for(url, directory))]


def start_huey(url: str, directory: Path, processes: int) -> list[subprocess.Popen[bytes]]:
    args = [sys.executable, __file__, "--huey-consumer", str(CONCURRENCY)]
    return [
        subprocess.Popen(args, cwd=directory, env=env_for(url, directory))
        for _ in range(processes)
    ]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGINT)  # graceful for huey and microback alike
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(system: str, url: str, directory: Path, processes: int, count: int) -> float:
    """Jobs per second: from the commit of ``count`` jobs until the queue is empty."""
    sys.path[:0] = [str(directory)]
    os.environ["DATABASE_URL"] = os.environ["HUEY_URL"] = url
    if system == "microback":
        import bench  # type: ignore[import-not-found]

        bench.db.create_tables()
        workers = start_microback(url, directory, processes)
        time.sleep(3)  # started and polling an empty queue

        def remaining() -> int:
            bench.db.close_all()
            return int(bench.jobs.store.Job.select().count())

        with bench.db.atomic():
            for n in range(count):
                bench.trivial.enqueue(n)
    else:
        import bench_huey

        storage = bench_huey.huey.storage
        workers = start_huey(url, directory, processes)
        time.sleep(3)

        def remaining() -> int:
            storage.database.close()
            return int(storage.queue_size())

        with storage.database.atomic():
            for n in range(count):
                bench_huey.trivial(n)
    started = time.perf_counter()
    try:
        while remaining():
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
    finally:
        stop(workers)
    return count / elapsed


def fresh_database(backend: str, postgresql: str, directory: Path, tag: str) -> str:
    if backend == "sqlite":
        path = directory / f"{tag}.db"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    name = f"microback_jobs_bench_{tag}"
    with psycopg.connect(postgresql, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return postgresql.rsplit("/", 1)[0] + "/" + name


def run_one(system: str, url: str, directory: Path, processes: int, count: int) -> float:
    """Each measurement in a fresh interpreter: the models bind to one database URL."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", system, url, str(processes), str(count)],
        cwd=directory,
        env=env_for(url, directory),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode:
        raise SystemExit(f"{system} on {url} with {processes} process(es) failed:\n{out.stderr}")
    return float(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def enqueue_cost(url: str, directory: Path, requests: int) -> dict[str, float]:
    """Mean microseconds per POST, with and without an enqueue, over HTTP."""
    subprocess.run(
        [sys.executable, "-c", "import bench; bench.db.create_tables()"],
        cwd=directory,
        env=env_for(url, directory),
        check=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "microback", "serve", "bench:app", "--port", str(port), *QUIET],
        cwd=directory,
        env=env_for(url, directory),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        results: dict[str, list[float]] = {
            path: [] for path in ("/plain", "/enqueue", "/write", "/write-enqueue")
        }
        for _ in range(3):
            for path in results:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                for _ in range(50):  # warm up
                    conn.request("POST", path, body=b"")
                    conn.getresponse().read()
                started = time.perf_counter()
                for _ in range(requests):
                    conn.request("POST", path, body=b"")
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise RuntimeError(f"POST {path} answered {response.status}")
                results[path].append((time.perf_counter() - started) / requests * 1e6)
                conn.close()
        return {path: statistics.median(values) for path, values in results.items()}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--postgresql", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--huey-consumer", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.huey_consumer:
        huey_consumer(args.huey_consumer)
        return
    if args.measure:
        system, url, processes, count = args.measure
        print(measure(system, url, Path.cwd(), int(processes), int(count)))
        return

    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        (directory / "bench.py").write_text(textwrap.dedent(APP).lstrip())
        (directory / "bench_huey.py").write_text(textwrap.dedent(HUEY).lstrip())
        print(f"{args.jobs} trivial jobs, {CONCURRENCY} greenlets per process, "
              f"medians of {args.rounds} rounds (A-B-A-B)")  # fmt: skip
        print(f"{'database':<11} {'processes':>9} {'microback/s':>12} {'huey/s':>9} {'ratio':>6}")
        for backend in args.databases.split(","):
            for processes in [int(p) for p in args.processes.split(",")]:
                rates: dict[str, list[float]] = {"microback": [], "huey": []}
                for round_ in range(args.rounds):
                    for system in rates:
                        tag = re.sub(r"\W", "_", f"{system}_{processes}_{round_}")
                        url = fresh_database(backend, args.postgresql, directory, tag)
                        rates[system].append(run_one(system, url, directory, processes, args.jobs))
                ours = statistics.median(rates["microback"])
                theirs = statistics.median(rates["huey"])
                print(f"{backend:<11} {processes:>9} {ours:>12,.0f} {theirs:>9,.0f} "
                      f"{ours / theirs:>6.2f}", flush=True)  # fmt: skip
        url = fresh_database("postgresql", args.postgresql, directory, "http")
        costs = enqueue_cost(url, directory, args.requests)
        print(f"POST over HTTP on PostgreSQL, {args.requests} sequential requests, medians of 3:")
        for without, with_ in (("/plain", "/enqueue"), ("/write", "/write-enqueue")):
            plain, enqueue = costs[without], costs[with_]
            print(f"  {without:<7} {plain:>7,.0f} µs   {with_:<14} {enqueue:>7,.0f} µs   "
                  f"+{enqueue - plain:,.0f} µs")  # fmt: skip
        print("  (/plain writes nothing, so it commits nothing; /write commits one row)")


if __name__ == "__main__":
    main()
