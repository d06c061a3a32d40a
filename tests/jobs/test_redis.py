"""RedisJobs: the same job functions on huey's Redis storage (127.0.0.1:6379), through HTTP and
``microback worker``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from serving import child_env, microback_command, write_module

from microback import App
from microback.jobs import Job, RedisJobs
from microback.testing import TestClient, enqueued_jobs, run_jobs

REDIS = ("127.0.0.1", 6379)


def _redis_up() -> bool:
    try:
        socket.create_connection(REDIS, 1).close()
    except OSError:
        return False
    return True


# Locally a missing Redis skips these tests; in CI (which starts Redis) it fails them instead.
pytestmark = pytest.mark.skipif(
    not _redis_up() and os.environ.get("CI") != "true", reason="no Redis server at 127.0.0.1:6379"
)


@pytest.fixture
def name() -> str:
    return f"microback-test-{uuid.uuid4().hex[:12]}"  # a queue of this test's own


@pytest.fixture
def jobs(app: App, name: str):
    jobs = RedisJobs(app, "redis://127.0.0.1:6379/0", name=name, max_attempts=3, backoff=0)
    yield jobs
    jobs.huey.flush()
    jobs.close()


def test_enqueue_run_and_retry_through_redis(app: App, jobs: RedisJobs) -> None:
    runs: list[tuple[str, int, str]] = []

    @jobs.task
    def greet(job: Job, who: str) -> None:
        runs.append((job.id, job.attempt, who))
        if job.attempt < 3:
            raise OSError("the partner is down")

    @app.post("/greet/<who>")
    def create(request, who):
        return {"job": greet.enqueue(who)}, 201

    job_id = TestClient(app).post("/greet/ada").json["job"]
    [queued] = enqueued_jobs(app, greet)
    assert (queued.record.job_id, queued.args) == (job_id, ("ada",))
    deadline = time.monotonic() + 10
    while len(runs) < 3 and time.monotonic() < deadline:
        run_jobs(app, include_scheduled=True)
    assert runs == [(job_id, 1, "ada"), (job_id, 2, "ada"), (job_id, 3, "ada")]
    assert enqueued_jobs(app) == []


def test_what_redis_cannot_do_is_refused(jobs: RedisJobs) -> None:
    @jobs.task
    def noop(job: Job) -> None:
        pass

    with pytest.raises(ValueError, match="unique_key needs the database storage"):
        noop.schedule(unique_key="once")
    with pytest.raises(ValueError, match="no dead jobs"):
        jobs.retry()


APP = """
    import os
    from microback import App
    from microback.jobs import RedisJobs

    app = App()
    jobs = RedisJobs(app, "redis://127.0.0.1:6379/0", name=os.environ["QUEUE"])
    done = jobs.huey.storage.conn  # a redis client: the job records its run there


    @jobs.task
    def mark(job, n):
        done.sadd(os.environ["QUEUE"] + ":done", f"{n}:{job.attempt}")
"""


def test_microback_worker_runs_redis_jobs(tmp_path: Path, name: str, monkeypatch) -> None:
    write_module(tmp_path, "redisapp.py", APP)
    monkeypatch.setenv("QUEUE", name)
    monkeypatch.syspath_prepend(str(tmp_path))
    import redisapp  # type: ignore[import-not-found]

    try:
        for n in range(20):
            redisapp.mark.enqueue(n)
        env = child_env()
        env["QUEUE"] = name
        worker = subprocess.Popen(
            microback_command("worker", "redisapp:app", "--poll-interval", "0.1"),
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while redisapp.done.scard(f"{name}:done") < 20:
                assert time.monotonic() < deadline, "the worker did not run the 20 jobs"
                time.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
        members = {m.decode() for m in redisapp.done.smembers(f"{name}:done")}
        assert members == {f"{n}:1" for n in range(20)}
    finally:
        redisapp.done.delete(f"{name}:done")
        redisapp.jobs.huey.flush()
        redisapp.jobs.close()
        import sys

        sys.modules.pop("redisapp", None)
