"""``microback worker`` as real processes on a real database: SIGKILL in the middle of 100
jobs loses none, 2 processes run 1,000 jobs once each, SIGTERM finishes or releases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serving import child_env, microback_command, run_microback, write_module

from microback.cli import main
from microback.testing import selected_backends

APP = """
    import os
    import time

    from microback import App
    from microback.db import Database, fields
    from microback.jobs import Jobs

    app = App(secret_key="a-test-secret-key-that-is-long-enough")
    db = Database(app, "sqlite:///unused.db")  # DATABASE_URL gives the test's database
    jobs = Jobs(app, db, lease=float(os.environ.get("JOBS_LEASE", "60")))


    class Effect(db.Model):  # what a job did: once per job id, however often it runs
        job_id = fields.CharField(max_length=36, unique=True)
        n = fields.IntegerField()


    class Run(db.Model):  # every run, to count them
        job_id = fields.CharField(max_length=36)
        pid = fields.IntegerField()
        attempt = fields.IntegerField()


    @jobs.task
    def record(job, n, seconds=0.0):
        Run.create(job_id=job.id, pid=os.getpid(), attempt=job.attempt)
        time.sleep(seconds)
        Effect.insert(job_id=job.id, n=n).on_conflict_ignore().execute()
"""

DEADLINE = 60.0  # for anything to happen; each test normally ends in seconds


@pytest.fixture
def project(tmp_path: Path, database_url: str, monkeypatch) -> Iterator[object]:
    """The app above on the test's database, imported here too, with its tables made."""
    write_module(tmp_path, "jobsapp.py", APP)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    sys.modules.pop("jobsapp", None)
    module = importlib.import_module("jobsapp")
    module.db.create_tables()
    yield module
    module.db.close_all()
    sys.modules.pop("jobsapp", None)


def start_worker(cwd: Path, *args: str, lease: float = 60.0) -> subprocess.Popen[str]:
    """Start ``microback worker``; its log goes to a file (a full pipe would stall it)."""
    env = child_env()
    env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    env["JOBS_LEASE"] = str(lease)
    with (cwd / "worker.log").open("a") as log:
        return subprocess.Popen(
            microback_command("worker", "jobsapp:app", "--poll-interval", "0.1", *args),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def stop(process: subprocess.Popen[str], cwd: Path) -> str:
    """SIGTERM the worker, wait for it, and give the log of every worker so far."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("the worker did not stop on SIGTERM") from None
    return (cwd / "worker.log").read_text()


def counts(module) -> tuple[int, int]:
    module.db.close_all()  # a fresh read on every backend
    return module.Effect.select().count(), module.Run.select().count()


def test_sigkill_in_the_middle_of_100_jobs_loses_none(project, tmp_path: Path) -> None:
    for n in range(100):
        project.record.enqueue(n, seconds=0.05)
    first = start_worker(tmp_path, "--concurrency", "10", lease=2)
    try:
        wait_until(lambda: counts(project)[0] >= 30, "30 jobs done by the first worker")
    finally:
        first.kill()  # SIGKILL: no chance to release its jobs
        first.wait(timeout=DEADLINE)
    done_before = counts(project)[0]
    assert done_before < 100, "the first worker finished everything before it was killed"
    second = start_worker(tmp_path, "--concurrency", "10", lease=2)
    try:
        wait_until(lambda: counts(project)[0] == 100, "all 100 effects")
        wait_until(lambda: project.jobs.records() == [], "an empty queue")
    finally:
        log = stop(second, tmp_path)
    effects, runs = counts(project)
    assert effects == 100  # every job's effect, once (a unique job id)
    assert sorted(e.n for e in project.Effect.select()) == list(range(100))
    assert runs > 100  # the jobs in flight at the SIGKILL ran again...
    again = project.Run.select().where(project.Run.attempt == 2).count()
    assert again >= 1 and "had lost their worker" in log  # ...after their lease ran out


@pytest.mark.skipif(
    "postgresql" not in selected_backends(), reason="the 2-process case is PostgreSQL's"
)
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_1000_jobs_across_2_worker_processes_each_run_once(project, tmp_path: Path) -> None:
    with project.db.atomic():
        for n in range(1000):
            project.record.enqueue(n)
    # 4 jobs at a time per process: few connections on a PostgreSQL server shared with others.
    master = start_worker(tmp_path, "--workers", "2", "--concurrency", "4")
    try:
        wait_until(lambda: counts(project)[0] == 1000, "1,000 effects")
        wait_until(lambda: project.jobs.records() == [], "an empty queue")
    finally:
        stop(master, tmp_path)
    effects, runs = counts(project)
    assert (effects, runs) == (1000, 1000)  # none lost, none run twice
    assert project.Run.select(project.Run.job_id).distinct().count() == 1000
    assert project.Run.select(project.Run.pid).distinct().count() == 2  # both took part


def test_sigterm_finishes_short_jobs_and_releases_long_ones(project, tmp_path: Path) -> None:
    short = project.record.enqueue(1, seconds=0.5)
    long = project.record.enqueue(2, seconds=600)
    worker = start_worker(tmp_path, "--graceful-timeout", "2")
    wait_until(lambda: counts(project)[1] == 2, "both jobs running")
    started = time.monotonic()
    log = stop(worker, tmp_path)
    assert time.monotonic() - started < 15
    assert worker.returncode == 0
    assert [e.job_id for e in project.Effect.select()] == [short]
    [left] = project.jobs.records()
    assert (left.job_id, left.state) == (long, "queued")
    assert f"released to run again: {long}" in log
    assert f"job {short} jobsapp.record attempt 1/5 done in" in log


def test_cli_lists_retries_and_purges(project, tmp_path: Path, capsys) -> None:
    dead = project.record.enqueue(1, seconds="soon")  # time.sleep("soon") raises
    project.record.schedule((5,), delay=3600)
    project.jobs.store.Job.update(max_attempts=1).execute()
    project.jobs.run_pending()

    def microback(*args: str) -> list[str]:
        assert main(list(args)) == 0
        return capsys.readouterr().out.splitlines()

    lines = microback("jobs", "list", "jobsapp:app")
    assert lines[0].split()[:5] == ["ID", "NAME", "STATE", "ATTEMPTS", "DUE"]
    assert any(dead in line and " dead " in line and "TypeError" in line for line in lines)
    assert any(" queued " in line for line in lines)
    assert len(microback("jobs", "list", "jobsapp:app", "--state", "dead")) == 2
    assert microback("jobs", "retry", "jobsapp:app", dead) == ["queued 1 dead job(s) again"]
    assert {r.state for r in project.jobs.records()} == {"queued"}
    assert microback("jobs", "purge", "jobsapp:app", "--state", "all") == ["deleted 2 job(s)"]
    assert project.jobs.records() == []
    assert microback("jobs", "list", "jobsapp:app") == ["no jobs"]


def test_a_target_without_jobs_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    write_module(tmp_path, "nojobsapp.py", "from microback import App\napp = App()\n")
    expected = [
        "microback: error: nojobsapp:app has no background jobs: create them with "
        "Jobs(app, db) from microback.jobs in the app's module"
    ]
    result = run_microback("worker", "nojobsapp:app", cwd=tmp_path)  # patches gevent: a child
    assert (result.returncode, result.stderr.strip().splitlines()) == (2, expected)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert main(["jobs", "list", "nojobsapp:app"]) == 2
    finally:
        sys.modules.pop("nojobsapp", None)
    assert capsys.readouterr().err.strip().splitlines() == expected
