"""Issue 18: three instances behind HAProxy, one PostgreSQL behind PgBouncer, proven.

The cluster is deploy/local-cluster/ (see conftest.py): HAProxy on 127.0.0.1, instances of
``microback serve --workers 2`` on 127.0.0.11-13 running examples/bank, PgBouncer in
transaction pooling in front of a PostgreSQL of the cluster's own. Requests that must reach a
given instance go to its address directly; the loads go through HAProxy. Each test is bounded:
its loads have deadlines and every wait a timeout.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from rate_windows import start_in_a_fresh_window

from microback import App
from microback.db import Database, DatabaseConfigError

from .conftest import PASSWORD, load, local_cluster, sign_up

Load, Outcome, summary = load.Load, load.Outcome, load.summary
unresolved_transfers = load.unresolved_transfers

request = local_cluster.request
INSTANCES = (1, 2, 3)


def tag() -> str:
    return uuid.uuid4().hex[:8]


def cookie_of(headers: dict[str, str]) -> str:
    """The ``name=value`` of the session cookie a response sets."""
    return headers["set-cookie"].split(";", 1)[0]


def log_in(cluster: Any, index: int, email: str) -> tuple[str, str]:
    """Log in on instance ``index``: the session cookie and its CSRF token."""
    status, headers, body = request(
        cluster.instance(index), "POST", "/api/login", {"email": email, "password": PASSWORD}
    )
    assert status == 200, body
    return cookie_of(headers), json.loads(body)["csrf_token"]


def post_as(cluster: Any, index: int, path: str, cookie: str, csrf: str) -> int:
    """POST ``path`` on instance ``index`` with a session cookie and its CSRF token."""
    headers = {"Cookie": cookie, "X-CSRF-Token": csrf}
    return int(request(cluster.instance(index), "POST", path, headers=headers)[0])


def me_on_each(cluster: Any, cookie: str) -> list[int]:
    return [
        request(cluster.instance(i), "GET", "/api/me", headers={"Cookie": cookie})[0]
        for i in INSTANCES
    ]


def invariant(cluster: Any) -> dict[str, int]:
    """Check the bank's books in PostgreSQL directly; give the counts for the report.

    Money only moves: every balance is the opening balance minus what the account sent plus
    what it received (no transfer half-written), so the total never changes; every transfer
    has its receipt, written by its job, once the worker has caught up (no job lost).
    """
    with psycopg.connect(cluster.database_url(direct=True), autocommit=True) as db:

        def one(sql: str) -> Any:
            return db.execute(sql).fetchone()[0]  # type: ignore[index]

        accounts = one("SELECT count(*) FROM account")
        assert one("SELECT sum(balance) FROM account") == 1000 * accounts
        wrong = one(
            "SELECT count(*) FROM account a WHERE balance <> 1000"
            " - (SELECT coalesce(sum(amount), 0) FROM transfer WHERE source_id = a.id)"
            " + (SELECT coalesce(sum(amount), 0) FROM transfer WHERE target_id = a.id)"
        )
        assert wrong == 0, f"{wrong} accounts whose balance does not match their transfers"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            missing = one(
                "SELECT count(*) FROM transfer t WHERE NOT EXISTS"
                " (SELECT 1 FROM receipt r WHERE r.transfer_id = t.id)"
            )
            if missing == 0:
                break
            time.sleep(0.2)
        assert missing == 0, f"{missing} transfers have no receipt 30 s later: jobs lost"
        assert one("SELECT count(*) FROM receipt") == one("SELECT count(*) FROM transfer")
        dead = one("SELECT count(*) FROM microback_job WHERE state = 'dead'")
        assert dead == 0, f"{dead} jobs died"
        return {"accounts": accounts, "transfers": one("SELECT count(*) FROM transfer")}


def resend(cluster: Any, outcomes: list[Outcome], customers: list[Any]) -> None:
    """Resend each transfer whose answer was lost, with its key, as its client would.

    Each gets its one answer (made now, or stored by the first attempt), or 409 while the key
    is held by an attempt that died with its process (until ``lock_timeout``): never a second
    transfer, which ``invariant`` checks.
    """
    tokens = {c.account: c.token for c in customers}

    def again(outcome: Outcome) -> tuple[int, bytes]:
        headers = {
            "Authorization": f"Bearer {tokens[outcome.account]}",
            "Idempotency-Key": outcome.key or "",
        }
        status, _, body = request(
            cluster.frontend, "POST", "/api/transfers", outcome.body, headers=headers
        )
        return status, body

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(again, unresolved_transfers(outcomes)))
    assert all(status in (201, 409) for status, _ in answers), answers[:5]


# --- 1. sessions hold across instances --------------------------------------------------------


def test_a_session_made_on_one_instance_holds_on_the_others_until_logged_out(cluster):
    email = f"session-{tag()}@example.org"
    sign_up(cluster, email)
    cookie, csrf = log_in(cluster, 1, email)
    assert me_on_each(cluster, cookie) == [200, 200, 200]

    assert post_as(cluster, 2, "/api/logout", cookie, csrf) == 204
    assert me_on_each(cluster, cookie) == [401, 401, 401]  # a copy of the cookie is dead too


def test_log_out_everywhere_on_one_instance_ends_every_session_on_all(cluster):
    email = f"everywhere-{tag()}@example.org"
    sign_up(cluster, email)
    laptop, laptop_csrf = log_in(cluster, 1, email)
    phone, _ = log_in(cluster, 3, email)
    assert me_on_each(cluster, phone) == [200, 200, 200]

    assert post_as(cluster, 2, "/api/logout-everywhere", laptop, laptop_csrf) == 204
    assert me_on_each(cluster, phone) == [401, 401, 401]
    assert me_on_each(cluster, laptop) == [401, 401, 401]


# --- 2. throttles are global ------------------------------------------------------------------


def test_the_failed_log_in_over_the_limit_is_refused_on_whichever_instance(cluster):
    start_in_a_fresh_window(900, 60)  # the ten failures and the refusals in one window
    email = f"guessed-{tag()}@example.org"
    sign_up(cluster, email)
    wrong = {"email": email, "password": "not the password"}
    # The limit is 10 failures per account; they are spread over the three instances.
    statuses = [
        request(cluster.instance(1 + n % 3), "POST", "/api/login", wrong)[0] for n in range(10)
    ]
    assert statuses == [401] * 10
    for index in INSTANCES:
        status, headers, body = request(cluster.instance(index), "POST", "/api/login", wrong)
        assert status == 429, body
        assert int(headers["retry-after"]) > 0
    # The right password too, now: the account waits for its window to end, on every instance.
    right = {"email": email, "password": PASSWORD}
    assert request(cluster.instance(2), "POST", "/api/login", right)[0] == 429


# --- 3. Idempotency-Keys are global -----------------------------------------------------------


def test_an_idempotency_key_repeated_on_other_instances_gets_the_stored_answer(cluster):
    payer = sign_up(cluster, f"payer-{tag()}@example.org")
    payee = sign_up(cluster, f"payee-{tag()}@example.org")
    headers = {"Authorization": f"Bearer {payer.token}", "Idempotency-Key": str(uuid.uuid4())}
    answers = [
        request(
            cluster.instance(i),
            "POST",
            "/api/transfers",
            {"to": payee.account, "amount": 7},
            headers=headers,
        )
        for i in INSTANCES
    ]
    assert [status for status, _, _ in answers] == [201, 201, 201]
    assert [h.get("idempotent-replayed") for _, h, _ in answers] == [None, "true", "true"]
    assert answers[1][2] == answers[2][2] == answers[0][2]

    balances = [
        json.loads(
            request(
                cluster.frontend, "GET", "/api/me", headers={"Authorization": f"Bearer {c.token}"}
            )[2]
        )["balance"]
        for c in (payer, payee)
    ]
    assert balances == [993, 1007]  # moved once
    with psycopg.connect(cluster.database_url(direct=True), autocommit=True) as db:
        transfers = db.execute(
            "SELECT count(*) FROM transfer WHERE source_id = %s", (payer.account,)
        ).fetchone()
    assert transfers == (1,)
    invariant(cluster)


# --- 7. SIGKILL of one instance under load ----------------------------------------------------


def test_killing_an_instance_fails_only_its_requests_in_flight(cluster, customers):
    with Load(cluster.frontend, customers, seconds=12) as load:
        time.sleep(4)
        killed_at = time.monotonic()
        victims = cluster.kill_instance(2)  # returns once every process of it is gone
        gone_at = time.monotonic()
        cluster.wait_status("i2", "DOWN", 3)  # within its check interval (1 s) and then some
        noticed_at = time.monotonic()
        outcomes = load.wait()
    failed = [o for o in outcomes if o.failed]
    report = (
        f"{summary(outcomes)}; killed pids {victims} (gone in {gone_at - killed_at:.3f} s); "
        f"{len(failed)} failed; HAProxy saw i2 down {noticed_at - killed_at:.2f} s after the kill"
    )
    print(report)
    try:
        # Only requests in flight on it: sent before its processes (and sockets) were gone,
        # give or take the first 0.1 s (one CI run saw a log-in sent 6 ms after the processes
        # were reaped still fail on it), and not answered before the kill. Those sent later
        # were refused and went to another one.
        late = [o for o in failed if o.started > gone_at + 0.1 or o.ended < killed_at]
        offsets = [(round(o.started - killed_at, 3), round(o.ended - killed_at, 3)) for o in late]
        assert late == [], f"{report}; failed outside the kill (start, end after it): {offsets}"
        assert len(failed) <= len(customers), report  # one request in flight per client at most
        assert all(o.status in (0, 502, 503, 504) for o in failed), failed[:5]
        assert len(outcomes) > 100, report
    finally:  # the instance comes back for the next tests, whatever this one found
        cluster.start_instance(2)
        cluster.wait_status("i2", "UP", 60)
    # The books are right (resending what was not answered).
    resend(cluster, failed, customers)
    invariant(cluster)


# --- 4. a rolling deploy under load -----------------------------------------------------------


def test_a_rolling_deploy_under_load_fails_no_request(cluster, customers):
    version = f"2-{tag()}"
    seconds = float(os.environ.get("MICROBACK_CLUSTER_LOAD_SECONDS", "60"))
    with Load(cluster.frontend, customers, seconds=seconds) as load:
        time.sleep(3)
        began = time.monotonic()
        cluster.rolling_deploy(version)
        deployed = time.monotonic() - began
        outcomes = load.wait()
    failed = [o for o in outcomes if o.failed]
    versions = {o.version for o in outcomes if o.status}
    report = f"{summary(outcomes)}; deploy took {deployed:.1f} s; versions seen {versions}"
    print(report)
    assert failed == [], f"{report}; failed: {failed[:5]}"
    assert versions == {"1", version} or versions >= {version}, report
    for index in INSTANCES:
        assert cluster.versions_of(index) == {version}
    assert request(cluster.frontend, "GET", "/version")[1]["x-app-version"] == version
    assert len(outcomes) > 500, report
    invariant(cluster)


# --- 5. a PostgreSQL restart under load -------------------------------------------------------


def test_a_database_restart_gives_503s_then_recovers_and_loses_nothing(cluster, customers):
    with Load(cluster.frontend, customers, seconds=25) as load:
        time.sleep(4)
        down_at = time.monotonic()
        cluster.restart_postgresql(outage=4)
        back_at = time.monotonic()
        outcomes = load.wait()
    failed = [o for o in outcomes if o.failed]
    from_proxy = sum("no instance is ready" in o.detail for o in failed)
    last = max((o.started for o in failed), default=back_at) - back_at
    report = (
        f"{summary(outcomes)}; PostgreSQL down {back_at - down_at:.1f} s; {len(failed)} answers "
        f"not 2xx ({from_proxy} from HAProxy: no instance ready); the last failed request was "
        f"sent {last:.2f} s after PostgreSQL was back"
    )
    print(report)
    # During the outage: 503 with Retry-After, nothing else (no 500, no dropped connection).
    wrong = [o for o in failed if o.status != 503 or not o.retry_after]
    assert wrong == [], f"{report}; {wrong[:5]}"
    assert all("Traceback" not in o.detail for o in outcomes)
    assert failed, "the restart made no request fail: it did not happen under load"
    assert all(o.started < back_at + 5 for o in failed), (
        f"{report}; still failing more than 5 s after the database came back: "
        f"{[round(o.started - back_at, 2) for o in failed if o.started >= back_at + 5][:10]}"
    )
    assert any(o.started > back_at + 5 and not o.failed for o in outcomes), report
    resend(cluster, failed, customers)
    invariant(cluster)


# --- 6. PgBouncer in transaction mode ---------------------------------------------------------


def test_through_pgbouncer_without_the_option_the_error_says_to_add_it(cluster):
    """The rest of the suite runs through PgBouncer with ?transaction_pooling=true (.ci/run);
    this is what a URL without it gets, once psycopg has prepared a statement."""
    # A new database: PgBouncer makes a new pool for it, whose one server connection will be
    # the one that holds the prepared statement.
    name = f"prepared_{tag()}"
    admin_url = cluster.database_url(direct=True, name="postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = cluster.database_url(name=name)
    app = App(secret_key="cluster-test-secret-key-0123456789abcdef")
    plain, pooled = Database(app, url.partition("?")[0]), Database(url=url)
    try:
        for _ in range(8):  # psycopg prepares a statement after 5 runs on a connection
            plain.database.execute_sql("SELECT %s::int + 1", (1,))
        with psycopg.connect(url.partition("?")[0]) as other:
            other.execute("SELECT 1")  # in a transaction: it keeps that server connection
            with pytest.raises(DatabaseConfigError) as refused:
                plain.database.execute_sql("SELECT %s::int + 1", (1,))
            for _ in range(8):  # with the option: nothing prepared, any server connection
                assert pooled.database.execute_sql("SELECT %s::int + 1", (1,)).fetchone() == (2,)
    finally:
        plain.close_all()
        pooled.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    assert str(refused.value).endswith(
        "where a statement prepared on one server connection is missing on the next; "
        "add ?transaction_pooling=true to the URL"
    )
    assert str(refused.value).startswith('prepared statement "_pg3_')
