"""Soak: does examples/accounts keep its memory, files and data over a long mixed load?

Starts ``microback serve examples/accounts/app.py:app --workers 2`` on a fresh PostgreSQL
database, then ``--users`` simulated people share a fixed request rate (``--rate``, requests a
second for the whole run, so the load is bounded and the same at minute 1 and minute 60):
each signs up and gets an API token, then loops over

- the JSON API with the token: create, read, edit and list notes, delete the oldest, list
  tokens; every 10th round a new token replaces the old one, which must then get 401;
- the browser pages with a cookie session: log in through the form, read the note page, add
  and edit a note through CSRF-protected forms, a form without the token (403), log out, and
  the old cookie replayed (counted: refused, or still accepted);
- every 10th round a throw-away account signs up through the HTML form.

Every 10 s it samples each worker's RSS and open file descriptors (and the master's). At the
end every user's notes are read back through the API and counted in the database, and must be
exactly what the clients wrote. The result (samples, status counts, checks, memory growth
after warm-up) is saved as JSON in ``benchmarks/results/``.

    python benchmarks/soak.py --duration 3600        # one hour, 50 requests/s, 30 users
    python benchmarks/soak.py --duration 60 --no-save   # a smoke test

To soak a fixed commit while the working tree changes, run an exported copy with
``PYTHONPATH`` pointing at it (so the server imports that copy's microback too) and
``--results`` pointing back here.

Needs PostgreSQL on 127.0.0.1:5432 (``--server-url``); the database ``microback_soak_<pid>``
is created and dropped by the run.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks" / "server"))
import procstat  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
APP = ROOT / "examples" / "accounts" / "app.py"
SCOPES = ["notes:read", "notes:write", "account"]
MAX_NOTES = 20  # per user: the oldest is deleted beyond this, so list pages stay one size
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_NOTE_ACTION = re.compile(r'action="/notes/(\d+)"')


class Pacer:
    """Hands out request slots at a fixed rate shared by every thread."""

    def __init__(self, rate: float, deadline: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()
        self.deadline = deadline
        self.lock = threading.Lock()

    def wait(self) -> None:
        """Sleep until this caller's slot."""
        with self.lock:
            slot = max(self.next, time.monotonic() - 1.0)  # a late client does not burst
            self.next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def over(self) -> bool:
        """Whether the run's time is up (checked between steps, so none is left half done)."""
        return time.monotonic() >= self.deadline


class Stats:
    """Answers by (method, route, status), failures with a sample of each, and latencies."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.failures: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, str] = {}
        self.latencies: list[float] = []
        self.replay: collections.Counter[str] = collections.Counter()

    def record(self, key: str, seconds: float) -> None:
        with self.lock:
            self.counts[key] += 1
            self.latencies.append(seconds)

    def fail(self, kind: str, detail: str) -> None:
        with self.lock:
            self.failures[kind] += 1
            self.examples.setdefault(kind, detail[:500])


class User:
    """One person: an account, an API token, a browser, and the notes they expect to have."""

    def __init__(self, base: str, index: int, pacer: Pacer, stats: Stats) -> None:
        self.base, self.pacer, self.stats = base, pacer, stats
        self.address = f"10.{index // 250}.{index % 250}.{secrets.randbelow(250) + 1}"
        self.email = f"soak{index}-{secrets.token_hex(4)}@example.org"
        self.password = secrets.token_urlsafe(12)
        self.api = requests.Session()
        self.api.headers["X-Forwarded-For"] = self.address
        self.token = ""
        self.token_id = 0
        self.notes: dict[int, str] = {}  # what the server must hold for this user
        self.signups = 0  # throw-away accounts made

    # --- requests ------------------------------------------------------------------------

    def send(
        self,
        session: requests.Session,
        method: str,
        path: str,
        route: str,
        expect: int,
        **kwargs: Any,
    ) -> requests.Response | None:
        self.pacer.wait()
        started = time.perf_counter()
        try:
            response = session.request(
                method, self.base + path, allow_redirects=False, timeout=30, **kwargs
            )
        except requests.RequestException as exc:
            self.stats.fail(f"{method} {route}: {type(exc).__name__}", str(exc))
            return None
        self.stats.record(
            f"{method} {route} {response.status_code}", time.perf_counter() - started
        )
        if response.status_code != expect:
            self.stats.fail(
                f"{method} {route}: {response.status_code} (expected {expect})",
                response.text,
            )
            return None
        return response

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    # --- the scenario --------------------------------------------------------------------

    def sign_up(self) -> bool:
        body = {"email": self.email, "password": self.password}
        return (
            self.send(self.api, "POST", "/api/signup", "/api/signup", 201, json=body) is not None
        )

    def new_token(self) -> bool:
        body = {"email": self.email, "password": self.password, "name": "soak", "scopes": SCOPES}
        answer = self.send(self.api, "POST", "/api/tokens", "/api/tokens", 201, json=body)
        if answer is None:
            return False
        old_token, old_id = self.token, self.token_id
        self.token, self.token_id = answer.json()["token"], answer.json()["id"]
        if old_token:
            path = f"/api/tokens/{old_id}"
            self.send(self.api, "DELETE", path, "/api/tokens/<id>", 204, headers=self.bearer())
            self.send(
                self.api, "GET", "/api/notes", "/api/notes", 401, headers=self.bearer(old_token)
            )
        return True

    def api_round(self, round_number: int) -> None:
        auth = self.bearer()
        text = f"note {round_number} {secrets.token_hex(8)}"
        created = self.send(
            self.api, "POST", "/api/notes", "/api/notes", 201, json={"text": text}, headers=auth
        )
        if created is None:
            return
        note_id = created.json()["id"]
        self.notes[note_id] = text
        shown = self.send(
            self.api, "GET", f"/api/notes/{note_id}", "/api/notes/<id>", 200, headers=auth
        )
        if shown is not None and shown.json()["text"] != text:
            self.stats.fail("GET /api/notes/<id>: wrong text", shown.text)
        text = text + " (edited)"
        edited = self.send(
            self.api, "PUT", f"/api/notes/{note_id}", "/api/notes/<id>", 200,
            json={"text": text}, headers=auth,
        )  # fmt: skip
        if edited is not None:
            self.notes[note_id] = text
        listed = self.send(self.api, "GET", "/api/notes", "/api/notes", 200, headers=auth)
        if listed is not None:
            self.check_notes(listed.json(), "GET /api/notes: not what was written")
        if len(self.notes) > MAX_NOTES:
            oldest = min(self.notes)
            path = f"/api/notes/{oldest}"
            if self.send(self.api, "DELETE", path, "/api/notes/<id>", 204, headers=auth):
                del self.notes[oldest]
        self.send(self.api, "GET", "/api/tokens", "/api/tokens", 200, headers=auth)

    def check_notes(self, listed: list[dict[str, Any]], failure: str) -> bool:
        held = {note["id"]: note["text"] for note in listed}
        if held != self.notes:
            self.stats.fail(failure, f"{self.email}: server {held}, client {self.notes}")
            return False
        return True

    def browser_round(self, round_number: int) -> None:
        browser = requests.Session()
        browser.headers["X-Forwarded-For"] = self.address
        page = self.send(browser, "GET", "/login", "/login", 200)
        if page is None:
            return
        form = {"csrf_token": _csrf(page.text), "email": self.email, "password": self.password}
        if (
            self.send(browser, "POST", "/login", "/login", 303, data={**form, "next": "/notes"})
            is None
        ):
            return
        page = self.send(browser, "GET", "/notes", "/notes", 200)
        if page is None:
            return
        token = _csrf(page.text)
        text = f"form note {round_number} {secrets.token_hex(8)}"
        before = set(map(int, _NOTE_ACTION.findall(page.text)))
        if self.send(
            browser, "POST", "/notes", "/notes", 303, data={"csrf_token": token, "text": text}
        ):
            page = self.send(browser, "GET", "/notes", "/notes", 200)
            if page is not None:
                new = set(map(int, _NOTE_ACTION.findall(page.text))) - before
                if len(new) == 1:
                    (note_id,) = new
                    self.notes[note_id] = text
                    text += " (edited)"
                    data = {"csrf_token": token, "text": text}
                    if self.send(
                        browser, "POST", f"/notes/{note_id}", "/notes/<id>", 303, data=data
                    ):
                        self.notes[note_id] = text
                else:
                    self.stats.fail("POST /notes: new note not found", page.text)
        self.send(browser, "POST", "/notes", "/notes (no CSRF token)", 403, data={"text": "x"})
        cookies = browser.cookies.get_dict()
        self.send(browser, "POST", "/logout", "/logout", 303, data={"csrf_token": token})
        replay = requests.Session()
        replay.headers["X-Forwarded-For"] = self.address
        replay.cookies.update(cookies)
        self.pacer.wait()
        try:
            answer = replay.get(self.base + "/notes", allow_redirects=False, timeout=30)
            outcome = "accepted" if answer.status_code == 200 else f"refused {answer.status_code}"
        except requests.RequestException as exc:
            outcome = f"error {type(exc).__name__}"
        with self.stats.lock:
            self.stats.replay[outcome] += 1
            self.stats.counts[f"GET /notes (old cookie) {outcome}"] += 1

    def throwaway_signup(self) -> None:
        browser = requests.Session()
        self.signups += 1
        browser.headers["X-Forwarded-For"] = (
            f"10.200.{self.signups % 250}.{secrets.randbelow(250)}"
        )
        page = self.send(browser, "GET", "/signup", "/signup", 200)
        if page is None:
            return
        email = f"throwaway-{secrets.token_hex(6)}@example.org"
        data = {
            "csrf_token": _csrf(page.text),
            "email": email,
            "password": secrets.token_urlsafe(12),
        }
        if self.send(browser, "POST", "/signup", "/signup", 303, data=data) is None:
            self.signups -= 1
            return
        page = self.send(browser, "GET", "/notes", "/notes", 200)
        if page is not None:
            self.send(
                browser, "POST", "/logout", "/logout", 303, data={"csrf_token": _csrf(page.text)}
            )

    def run(self) -> None:
        if not (self.sign_up() and self.new_token()):
            return
        round_number = 0
        while not self.pacer.over():
            round_number += 1
            self.api_round(round_number)
            if self.pacer.over():
                break
            self.browser_round(round_number)
            if round_number % 10 == 0 and not self.pacer.over():
                self.new_token()
                self.throwaway_signup()


def _csrf(page: str) -> str:
    match = _CSRF.search(page)
    return match.group(1) if match else ""


# --- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server exited at start-up")
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start within 60 s")


def sample(master: int, started: float, requests_so_far: int) -> dict[str, Any]:
    workers = [pid for pid in procstat.process_tree(master) if pid != master]
    return {
        "t": round(time.monotonic() - started, 1),
        "requests": requests_so_far,
        "master": {
            "rss_kb": procstat.status_kb(master, "VmRSS"),
            "fds": procstat.open_fds(master),
        },
        "workers": {
            str(pid): {"rss_kb": procstat.status_kb(pid, "VmRSS"), "fds": procstat.open_fds(pid)}
            for pid in workers
        },
    }


def memory_growth(samples: list[dict[str, Any]], warmup: float) -> dict[str, Any]:
    """Per worker, after warm-up: first and last RSS, the spread, and the trend per 100,000
    requests (least squares), so growth that is small in an hour still shows."""
    after = [s for s in samples if s["t"] >= warmup]
    report: dict[str, Any] = {}
    for pid in sorted({pid for s in after for pid in s["workers"]}):
        points = [
            (s["requests"], s["workers"][pid]["rss_kb"] / 1024)
            for s in after
            if pid in s["workers"] and s["workers"][pid]["rss_kb"]
        ]
        if len(points) < 3:
            continue
        xs = [x for x, _ in points]
        ys = [y for _, y in points]
        slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else 0.0
        fds = [s["workers"][pid]["fds"] for s in after if pid in s["workers"]]
        report[pid] = {
            "rss_mb_first": round(ys[0], 2),
            "rss_mb_last": round(ys[-1], 2),
            "rss_mb_min": round(min(ys), 2),
            "rss_mb_max": round(max(ys), 2),
            "growth_mb": round(ys[-1] - ys[0], 2),
            "spread_mb": round(max(ys) - min(ys), 2),
            "trend_mb_per_100k_requests": round(slope * 100_000, 3),
            "fds_min": min(fds),
            "fds_max": max(fds),
        }
    return report


def final_check(users: list[User], base: str, db_url: str, stats: Stats) -> dict[str, Any]:
    """Read every user's notes back through the API and count rows in the database."""
    mismatched = 0
    for user in users:
        if not user.token:
            continue
        answer = requests.get(base + "/api/notes", headers=user.bearer(), timeout=30)
        if answer.status_code != 200 or not user.check_notes(answer.json(), "final: notes differ"):
            mismatched += 1
    expected_users = sum(1 + user.signups for user in users if user.token)
    expected_notes = sum(len(user.notes) for user in users)
    with psycopg.connect(db_url) as conn:
        (user_rows,) = conn.execute("SELECT count(*) FROM auth_user").fetchone() or (0,)
        (note_rows,) = conn.execute("SELECT count(*) FROM note").fetchone() or (0,)
    return {
        "users_expected": expected_users,
        "users_in_database": user_rows,
        "notes_expected": expected_notes,
        "notes_in_database": note_rows,
        "users_whose_notes_differ": mismatched,
        "ok": mismatched == 0 and user_rows == expected_users and note_rows == expected_notes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (600)")
    parser.add_argument("--rate", type=float, default=50, help="requests a second, all users (50)")
    parser.add_argument("--users", type=int, default=30, help="simulated people (30)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (2)")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples (10)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds before memory counts (duration/6)"
    )
    parser.add_argument(
        "--server-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL database to create the soak database from",
    )
    parser.add_argument("--no-save", action="store_true", help="print the result, save nothing")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where to save it (benchmarks/results)"
    )
    parser.add_argument(
        "--commit", default=None, help="the commit measured, when run from an exported copy"
    )
    args = parser.parse_args()
    warmup = args.duration / 6 if args.warmup is None else args.warmup

    name = f"microback_soak_{os.getpid()}"
    db_url = args.server_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(args.server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "MICROBACK_SECRET_KEY": secrets.token_urlsafe(48),
        "MICROBACK_TRUSTED_PROXIES": "127.0.0.1",  # each simulated person has an address
        "ACCOUNTS_PASSWORD_ROUNDS": "10",
    }
    microback = str(Path(sys.executable).with_name("microback"))
    target = f"{APP}:app"
    server = None
    try:
        subprocess.run([microback, "db", "create-tables", target], env=env, check=True)
        server = subprocess.Popen(
            [microback, "serve", target, "--workers", str(args.workers),
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
        )  # fmt: skip
        wait_ready(port, server)
        base = f"http://127.0.0.1:{port}"
        stats = Stats()
        started = time.monotonic()
        pacer = Pacer(args.rate, started + args.duration)
        users = [User(base, index, pacer, stats) for index in range(args.users)]
        threads = [threading.Thread(target=user.run, daemon=True) for user in users]
        for thread in threads:
            thread.start()
        samples = []
        while any(thread.is_alive() for thread in threads):
            samples.append(sample(server.pid, started, sum(stats.counts.values())))
            print(json.dumps(samples[-1]), flush=True)
            for thread in threads:
                thread.join(timeout=max(0.0, args.interval / len(threads)))
        samples.append(sample(server.pid, started, sum(stats.counts.values())))
        elapsed = time.monotonic() - started
        check = final_check(users, base, db_url, stats)
        latencies = sorted(stats.latencies)
        result = {
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": args.commit
            or subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
            "options": {**vars(args), "results": str(args.results), "warmup": warmup},
            "elapsed_s": round(elapsed, 1),
            "requests": sum(stats.counts.values()),
            "requests_per_s": round(sum(stats.counts.values()) / elapsed, 1),
            "latency_ms": {
                "p50": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
                "p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 1)
                if latencies
                else None,
            },
            "server_errors": sum(
                n for k, n in stats.counts.items() if k.split()[-1].startswith("5")
            ),
            "failures": dict(stats.failures),
            "failure_examples": stats.examples,
            "old_cookie_after_logout": dict(stats.replay),
            "data_check": check,
            "memory_after_warmup": memory_growth(samples, warmup),
            "answers": dict(sorted(stats.counts.items())),
            "samples": samples,
        }
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        with psycopg.connect(args.server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    summary = {k: v for k, v in result.items() if k not in ("samples", "answers")}
    print(json.dumps(summary, indent=2))
    if not args.no_save:
        args.results.mkdir(exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = args.results / f"soak-{stamp}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"saved {path}")
    ok = check["ok"] and not stats.failures and result["server_errors"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
