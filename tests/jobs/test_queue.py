"""Jobs in the app's database: enqueue joins the request's transaction, leases, retries with
back-off, the dead state, unique keys, scheduled and periodic jobs."""

from __future__ import annotations

import datetime
import time

import pytest

from microback import App
from microback.db import Database
from microback.jobs import Job, Jobs, crontab


def test_enqueue_in_a_request_commits_with_it(app: App, jobs: Jobs, effects, client) -> None:
    seen: list[tuple[str, int]] = []

    @jobs.task
    def record(job: Job, value: str) -> None:
        effects.Effect.create(job_id=job.id, value=value)
        seen.append((job.id, job.attempt))

    @app.post("/things")
    def create(request):
        return {"job": record.enqueue("made")}, 201

    job_id = client.post("/things").json["job"]
    [queued] = jobs.enqueued(record)
    assert (queued.record.job_id, queued.args, queued.state) == (job_id, ("made",), "queued")
    assert jobs.run_pending() == 1
    assert seen == [(job_id, 1)]
    assert effects.Effect.get().value == "made"
    assert jobs.enqueued() == []


def test_a_request_that_enqueues_then_fails_leaves_no_job(app: App, jobs: Jobs, client) -> None:
    @jobs.task
    def never(job: Job) -> None:
        raise AssertionError("a job from a failed request ran")

    @app.post("/fails")
    def fails(request):
        never.enqueue()
        raise RuntimeError("the request fails after enqueuing")

    @app.post("/refuses")
    def refuses(request):
        never.enqueue()
        return {"error": "no"}, 503

    jobs.db.create_tables()
    client.post("/fails", status=500)
    client.post("/refuses", status=503)
    assert jobs.enqueued() == []
    assert jobs.run_pending() == 0


def test_a_job_is_invisible_to_workers_until_the_request_commits(
    app: App, jobs: Jobs, db: Database
) -> None:
    @jobs.task
    def noop(job: Job) -> None:
        pass

    db.create_tables()
    # A worker in another thread (its own connection) looks while the transaction is open.
    import threading

    looked: list[int] = []
    with db.atomic():
        noop.enqueue()

        def worker() -> None:
            try:
                looked.append(len(jobs.store.lease(10, "other", 30)))
            finally:
                db.database.close()

        if db.backend != "sqlite":  # SQLite's one writer would wait for this transaction
            thread = threading.Thread(target=worker)
            thread.start()
            thread.join(10)
            assert looked == [0]
    assert jobs.run_pending() == 1


def test_failures_retry_with_backoff_then_die_with_the_last_error(jobs: Jobs) -> None:
    attempts: list[int] = []

    @jobs.task(max_attempts=3)
    def flaky(job: Job) -> None:
        attempts.append(job.attempt)
        raise ValueError(f"partner down on attempt {job.attempt}")

    jobs.db.create_tables()
    job_id = flaky.enqueue()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(attempts) < 3:
        jobs.run_pending()
        time.sleep(0.01)
    assert attempts == [1, 2, 3]
    [dead] = jobs.records()
    assert (dead.job_id, dead.state, dead.attempts) == (job_id, "dead", 3)
    assert dead.last_error == "ValueError: partner down on attempt 3"
    assert jobs.run_pending() == 0
    assert jobs.store.retry() == 1
    jobs.run_pending()
    assert attempts[3] == 1  # a fresh set of attempts
    assert jobs.store.purge(None) == 1  # whatever state the retried job is in now
    assert jobs.records() == []


def test_retry_delay_doubles_with_jitter(app: App, db: Database) -> None:
    jobs = Jobs(app, db, backoff=1.0, max_backoff=10.0)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        delays = {jobs.retry_delay(attempt) for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays)
        assert len(delays) > 1  # spread, not one value


def test_failed_job_waits_for_its_retry(app: App, db: Database) -> None:
    jobs = Jobs(app, db, backoff=60.0)

    @jobs.task
    def fails(job: Job) -> None:
        raise OSError("no route")

    db.create_tables()
    fails.enqueue()
    assert jobs.run_pending() == 1
    [record] = jobs.records()
    assert record.state == "failed" and record.run_at > time.time() + 25
    assert jobs.run_pending() == 0


def test_unique_key_makes_a_second_enqueue_a_no_op(app: App, jobs: Jobs, client) -> None:
    runs: list[int] = []

    @jobs.task
    def charge(job: Job, order: int) -> None:
        runs.append(order)

    @app.post("/orders/<int:order>/charge")
    def charge_order(request, order):
        return {"job": charge.schedule((order,), unique_key=f"charge:{order}")}

    jobs.db.create_tables()
    first = client.post("/orders/7/charge").json["job"]
    second = client.post("/orders/7/charge").json["job"]
    other = client.post("/orders/8/charge").json["job"]
    assert first == second != other
    assert len(jobs.records()) == 2
    jobs.run_pending()
    assert sorted(runs) == [7, 8]


def test_scheduled_jobs_wait_for_their_time(jobs: Jobs) -> None:
    ran: list[str] = []

    @jobs.task
    def remind(job: Job, text: str) -> None:
        ran.append(text)

    jobs.db.create_tables()
    remind.schedule(("later",), delay=3600)
    remind.schedule(("at eta",), eta=datetime.datetime.now(datetime.timezone.utc))
    remind.schedule(("tomorrow",), eta=datetime.datetime.utcnow() + datetime.timedelta(days=1))
    assert jobs.run_pending() == 1
    assert ran == ["at eta"]
    assert jobs.run_pending(include_scheduled=True) == 2
    assert sorted(ran) == ["at eta", "later", "tomorrow"]


def test_periodic_jobs_are_enqueued_once_per_due_minute(jobs: Jobs) -> None:
    ran: list[str] = []

    @jobs.periodic(crontab(minute="*/5"))
    def sweep(job: Job) -> None:
        ran.append(job.id)

    jobs.db.create_tables()
    due = datetime.datetime(2026, 1, 1, 12, 5, 30, tzinfo=datetime.timezone.utc).timestamp()
    assert jobs.enqueue_periodic(due) == 1
    assert jobs.enqueue_periodic(due + 20) == 0  # same minute: another worker already did
    assert jobs.enqueue_periodic(due + 60) == 0  # 12:06 is not due
    assert jobs.enqueue_periodic(due + 300) == 1  # 12:10
    assert jobs.run_pending() == 2
    assert len(set(ran)) == 2


def test_expired_lease_is_run_again_with_the_same_id(jobs: Jobs) -> None:
    runs: list[tuple[str, int]] = []

    @jobs.task
    def work(job: Job) -> None:
        runs.append((job.id, job.attempt))

    jobs.db.create_tables()
    job_id = work.enqueue()
    [lost] = jobs.store.lease(1, "a worker that dies", 0.05)
    assert jobs.store.lease(1, "another", 30) == []  # leased: never twice at the same time
    time.sleep(0.1)
    assert jobs.store.reclaim_expired() == 1
    assert jobs.run_pending() == 1
    assert runs == [(job_id, 2)]
    assert not jobs.store.finish(lost)  # the first worker's late ack changes nothing


def test_a_job_function_must_be_declared_to_run(app: App, db: Database, jobs: Jobs) -> None:
    other = Jobs(App(secret_key="x" * 40), db)

    @other.task(name="somewhere.else", max_attempts=1)
    def elsewhere(job: Job) -> None:
        pass

    db.create_tables()
    elsewhere.enqueue()
    jobs.run_pending()
    [dead] = jobs.records()
    assert dead.state == "dead"
    assert "no job function named 'somewhere.else'" in (dead.last_error or "")


@pytest.mark.parametrize("bad", [{"lease": 0}, {"max_attempts": 0}])
def test_bad_settings_are_refused(app: App, db: Database, bad) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        Jobs(app, db, **bad)


def test_the_job_tables_come_from_a_migration(jobs: Jobs, db: Database, tmp_path) -> None:
    from microback.db.autodiff import compare, render
    from microback.db.migrations import Migrations

    @jobs.task
    def noop(job: Job) -> None:
        pass

    # What `microback db new --auto` then `microback db migrate` do.
    changes = compare(db.database, db.models)
    assert {"microback_job", "microback_job_periodic"} <= set(" ".join(changes.describe()).split())
    migrations = Migrations(db.database, tmp_path / "migrations")
    migrations.new("jobs", render(changes, db.database, "The job tables."))
    assert migrations.migrate() == ["0001_jobs"]
    assert not compare(db.database, db.models)
    noop.enqueue()
    assert jobs.run_pending() == 1
