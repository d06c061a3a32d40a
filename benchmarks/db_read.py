"""Single-row read over HTTP: microback vs Flask + peewee, on SQLite and PostgreSQL.

Both apps run under ``microback serve`` (one process, pinned to CPU 0) and are loaded by wrk
(pinned to CPU 1, 50 connections), interleaved A-B-A-B; the figures are medians.

    python benchmarks/db_read.py [--runs 3] [--seconds 5] [--postgresql postgresql://...]

Needs wrk (``apt-get install wrk``), Flask, and a PostgreSQL server for the PostgreSQL half.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS = 10_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fill_sqlite(path: Path) -> str:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE world (id INTEGER PRIMARY KEY, randomnumber INTEGER)")
    connection.executemany(
        "INSERT INTO world VALUES (?, ?)",
        [(i, random.randint(1, ROWS)) for i in range(1, ROWS + 1)],
    )
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def fill_postgresql(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE world (id INTEGER PRIMARY KEY, randomnumber INTEGER)")
        with conn.cursor().copy("COPY world (id, randomnumber) FROM STDIN") as copy:
            for i in range(1, ROWS + 1):
                copy.write_row((i, random.randint(1, ROWS)))
    return url


def drop_postgresql(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(framework: str, url: str, seconds: int) -> tuple[float, float]:
    port = free_port()
    env = {**os.environ, "BENCH_FRAMEWORK": framework, "DATABASE_URL": url}
    env["MICROBACK_SECRET_KEY"] = "benchmark-secret-key-0123456789abcdef"
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "microback", "serve",
         "benchmarks/apps/db_read.py:app", "--port", str(port), "--log-level", "error"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        out = subprocess.run(
            ["taskset", "-c", "1", "wrk", "-t1", "-c50", f"-d{seconds}s", "--latency",
             f"http://127.0.0.1:{port}/world/42"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=60)
    if "Non-2xx" in out:
        raise SystemExit(f"{framework} answered errors:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return rate, float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--postgresql", default="postgresql://postgres@127.0.0.1:5432/postgres")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    with tempfile.TemporaryDirectory() as tmp:
        databases = {"SQLite": fill_sqlite(Path(tmp) / "bench.db")}
        try:
            databases["PostgreSQL"] = fill_postgresql(options.postgresql, "microback_bench")
        except Exception as exc:
            print(f"(PostgreSQL skipped: {exc})")
        try:
            print(f"GET /world/42, wrk -c50 -d{options.seconds}s, medians of {options.runs}")
            print(f"{'database':<11} {'framework':<16} {'req/s':>8} {'p99 ms':>8} {'ratio':>6}")
            for name, url in databases.items():
                results: dict[str, list[tuple[float, float]]] = {"microback": [], "flask": []}
                for _ in range(options.runs):
                    for framework in results:
                        results[framework].append(measure(framework, url, options.seconds))
                medians = {
                    f: (
                        statistics.median(r for r, _ in runs),
                        statistics.median(p for _, p in runs),
                    )
                    for f, runs in results.items()
                }
                base = medians["flask"][0]
                for framework, (rate, p99) in medians.items():
                    label = "microback" if framework == "microback" else "Flask + peewee"
                    print(f"{name:<11} {label:<16} {rate:8.0f} {p99:8.1f} {rate / base:6.2f}")
        finally:
            if "PostgreSQL" in databases:
                drop_postgresql(options.postgresql, "microback_bench")


if __name__ == "__main__":
    main()
