"""``microback_jobs{state}`` on the metrics route: real jobs run, fail, die and wait."""

from __future__ import annotations

import re

from microback import App, enable_metrics
from microback.db import Database
from microback.jobs import Job, Jobs
from microback.testing import TestClient


def _jobs_by_state(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}).text
    return {
        state: float(value)
        for state, value in re.findall(r'^microback_jobs\{state="(\w+)"\} (\S+)$', text, re.M)
    }


def test_jobs_are_counted_by_state(app: App, db: Database, client: TestClient) -> None:
    jobs = Jobs(app, db, backoff=30, max_backoff=60)  # a failed job waits for its retry
    enable_metrics(app)

    @jobs.task
    def fine(job: Job) -> None:
        pass

    @jobs.task(max_attempts=1)
    def hopeless(job: Job) -> None:
        raise RuntimeError("always")

    @jobs.task(max_attempts=3)
    def flaky(job: Job) -> None:
        raise RuntimeError("not yet")

    @jobs.task
    def later(job: Job) -> None:
        pass

    jobs.db.create_tables()
    assert _jobs_by_state(client) == {"queued": 0, "failed": 0, "running": 0, "dead": 0}
    fine.enqueue()
    hopeless.enqueue()
    flaky.enqueue()
    later.schedule(delay=3600)
    assert _jobs_by_state(client) == {"queued": 4, "failed": 0, "running": 0, "dead": 0}
    assert jobs.run_pending() == 3  # fine is done, hopeless dead, flaky waits for its retry
    assert _jobs_by_state(client) == {"queued": 1, "failed": 1, "running": 0, "dead": 1}
    fine.enqueue()
    [leased] = jobs.store.lease(1, "a-worker", 60)  # what a worker does as it starts one
    assert leased.name == fine.name
    assert _jobs_by_state(client) == {"queued": 1, "failed": 1, "running": 1, "dead": 1}


def test_without_jobs_there_is_no_jobs_family(app: App, client: TestClient) -> None:
    enable_metrics(app)
    text = client.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}).text
    assert "microback_jobs" not in text
