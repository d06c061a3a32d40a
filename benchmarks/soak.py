"""Soak: does examples/accounts keep its memory, files and data over a long mixed load?

Starts ``microback serve examples/accounts/app.py:app --workers 2`` on a fresh PostgreSQL
database, then ``--users`` simulated people share a fixed request rate (``--rate``, requests a
second for the whole run, so the load is bounded and the same at minute 1 and minute 60):
each signs up and gets an API token, then loops over

- the JSON API with the token: create, read, edit and list notes, delete the oldest, list
  tokens; every 10th round a new token replaces the old one, which must then get 401;
- the browser pages with a cookie session: log in through the form, read the note page, add
  and edit a note through CSRF-protected forms, a form without the token (403), log out, and
  the old cookie replayed (counted: refused, or still accepted; not replayed when the log-out
  itself failed, since that cookie is meant to work);
- every 10th round a throw-away account signs up through the HTML form.

Every 10 s it samples each worker's RSS and open file descriptors (and the master's). At the
end every user's notes are read back through the API and counted in the database, and must be
exactly what the clients wrote; the accounts in the database must be those whose sign-up was
answered, give or take the sign-ups whose answer was lost (a 5xx or no answer: committed or
not, the client cannot know). The server's warning and error lines are counted by message.

Every client drops a connection that was idle for longer than ``CLIENT_IDLE`` (4 s) before its
next request, as a browser or a proxy with an idle timeout below the server's does: the server
closes an idle connection at its keep-alive timeout (5 s), and a request sent on it just then
is lost without an answer (RFC 9112 §9.3.1; benchmarks/README.md, the second one-hour run).
The result (samples, status counts, checks, memory growth
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
import tempfile
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
KEEPALIVE = 5.0  # the server's --keepalive-timeout (its default), passed explicitly
CLIENT_IDLE = KEEPALIVE - 1.0  # a client reuses no connection idle for longer than this
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


class Client(requests.Session):
    """A requests session that does not reuse a connection idle for longer than ``CLIENT_IDLE``.

    The server closes a connection idle for its keep-alive timeout; a request the client sends
    on it at that moment gets no answer (``RemoteDisconnected``), and whether it was processed
    the client cannot tell, so a POST may not be sent again (RFC 9112 §9.3.1). Clients avoid
    the race by giving up idle connections first: a proxy's idle timeout is set below the
    upstream's, and so is this one.
    """

    def __init__(self, address: str) -> None:
        super().__init__()
        self.headers["X-Forwarded-For"] = address
        self.idle_since: float | None = None

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        if self.idle_since is not None and time.monotonic() - self.idle_since > CLIENT_IDLE:
            self.close()  # its pooled connections; the next request opens a new one
        try:
            return super().request(*args, **kwargs)
        finally:
            self.idle_since = time.monotonic()


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
        self.api = Client(self.address)
        self.token = ""
        self.token_id = 0
        self.notes: dict[int, str] = {}  # what the server must hold for this user
        self.signups = 0  # throw-away sign-ups tried
        self.accounts = 0  # sign-ups answered as made (this user's and the throw-away ones)
        self.accounts_unsure = 0  # sign-ups whose answer was lost: made or not, nobody knows
        self.last_status: int | None = None  # of the last request sent; None: no answer

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
        self.last_status = None
        try:
            response = session.request(
                method, self.base + path, allow_redirects=False, timeout=30, **kwargs
            )
        except requests.RequestException as exc:
            self.stats.fail(f"{method} {route}: {type(exc).__name__}", str(exc))
            return None
        self.last_status = response.status_code
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
        made = self.send(self.api, "POST", "/api/signup", "/api/signup", 201, json=body)
        self.count_account(made is not None)
        return made is not None

    def count_account(self, made: bool) -> None:
        """Count a sign-up that was answered as made, or whose answer was lost."""
        if made:
            self.accounts += 1
        elif self.last_status is None or self.last_status >= 500:
            self.accounts_unsure += 1

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
        browser = Client(self.address)
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
        self.log_out_and_replay(browser, token)

    def log_out_and_replay(self, browser: requests.Session, token: str) -> None:
        """Log out, then send the cookie from before the log-out: it must be refused.

        A log-out that failed ended nothing, so its cookie is still good and is not replayed
        (counted as such): only a cookie that outlives a log-out that succeeded is a fault.
        """
        cookies = browser.cookies.get_dict()
        if self.send(browser, "POST", "/logout", "/logout", 303, data={"csrf_token": token}):
            replay = Client(self.address)
            replay.cookies.update(cookies)
            self.pacer.wait()
            try:
                answer = replay.get(self.base + "/notes", allow_redirects=False, timeout=30)
                status = answer.status_code
                outcome = "accepted" if status == 200 else f"refused {status}"
            except requests.RequestException as exc:
                outcome = f"error {type(exc).__name__}"
        else:
            outcome = "not replayed: log-out failed"
        with self.stats.lock:
            self.stats.replay[outcome] += 1
            self.stats.counts[f"GET /notes (old cookie) {outcome}"] += 1

    def throwaway_signup(self) -> None:
        self.signups += 1
        browser = Client(f"10.200.{self.signups % 250}.{secrets.randbelow(250)}")
        page = self.send(browser, "GET", "/signup", "/signup", 200)
        if page is None:
            return
        email = f"throwaway-{secrets.token_hex(6)}@example.org"
        data = {
            "csrf_token": _csrf(page.text),
            "email": email,
            "password": secrets.token_urlsafe(12),
        }
        made = self.send(browser, "POST", "/signup", "/signup", 303, data=data) is not None
        self.count_account(made)
        if not made:
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


#: "2026-12-02 02:54:02 +0000 [16832] ERROR microback.db: ... [request 1a2b3c-4]"
_LOG_LINE = re.compile(r"^\S+ \S+ \S+ \[\d+\] (WARNING|ERROR|CRITICAL) (.*)$")
_REQUEST_ID = re.compile(r" ?[(\[]request [^)\]]*[)\]]")


def server_log(text: str) -> dict[str, int]:
    """The server's warning and error lines, counted by message, errors first, so that a 5xx in
    the result can be traced to what the server said about it. Request ids are dropped and
    digits read as N, so that one kind of line is counted as one (its first 200 characters)."""
    counts: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            message = re.sub(r"[0-9]+", "N", _REQUEST_ID.sub("", match[2]))
            counts[f"{match[1]} {message[:200]}"] += 1
    return dict(sorted(counts.items(), key=lambda item: (item[0][0] == "W", -item[1])))


def accounts_expected(users: list[User]) -> tuple[int, int]:
    """The accounts the server must hold, and how many more it may hold (sign-ups whose answer
    was lost). Every sign-up answered as made counts, whether or not the token asked for next
    came: the second one-hour run counted only users who got one, so four whose first token
    request failed looked like four accounts from nowhere."""
    return sum(user.accounts for user in users), sum(user.accounts_unsure for user in users)


def final_check(users: list[User], base: str, db_url: str, stats: Stats) -> dict[str, Any]:
    """Read every user's notes back through the API and count rows in the database."""
    mismatched = 0
    for user in users:
        if not user.token:
            continue
        answer = requests.get(base + "/api/notes", headers=user.bearer(), timeout=30)
        if answer.status_code != 200 or not user.check_notes(answer.json(), "final: notes differ"):
            mismatched += 1
    expected_users, unsure_users = accounts_expected(users)
    expected_notes = sum(len(user.notes) for user in users)
    with psycopg.connect(db_url) as conn:
        (user_rows,) = conn.execute("SELECT count(*) FROM auth_user").fetchone() or (0,)
        (note_rows,) = conn.execute("SELECT count(*) FROM note").fetchone() or (0,)
    return {
        "users_expected": expected_users,
        "users_unsure": unsure_users,
        "users_in_database": user_rows,
        "notes_expected": expected_notes,
        "notes_in_database": note_rows,
        "users_whose_notes_differ": mismatched,
        "ok": mismatched == 0
        and expected_users <= user_rows <= expected_users + unsure_users
        and note_rows == expected_notes,
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
    # The server's warnings and errors, for the result; read once the server has stopped.
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in the finally below)
    try:
        subprocess.run([microback, "db", "create-tables", target], env=env, check=True)
        server = subprocess.Popen(
            [microback, "serve", target, "--workers", str(args.workers),
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "--keepalive-timeout", str(KEEPALIVE)],
            env=env, stderr=log,
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
            "client_idle_s": CLIENT_IDLE,
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
        log.seek(0)
        logged = log.read()
        log.close()
    result["server_log"] = server_log(logged)
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
