"""The job table in the app's database, with leases: what makes delivery at least once.

huey's own ``SqlStorage`` deletes a task's row when a worker takes it, so a worker killed
mid-task loses the task. Here taking a job *leases* it instead: the row becomes ``running``
with ``lease_until`` in the future and the attempt counted; the worker renews the lease while
the job runs and deletes the row only when the job has finished. A row whose lease has run
out (its worker died) is put back in the queue by whichever worker looks next.

Every statement goes through the app's :class:`~microback.db.Database`, on the calling
greenlet's connection: inside a request that is the request's connection, so an enqueue
joins the request's transaction and is committed or rolled back with it (the outbox pattern).

``attempts`` is also the fence: a worker finishes, fails or renews a job only while the row
still holds the attempt it leased, so a worker that lost its lease cannot undo the work of the
one that took the job over.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import peewee

if TYPE_CHECKING:
    from ..db import Database

__all__ = ["JobRecord", "JobStore", "Leased"]

QUEUED, RUNNING, DEAD = "queued", "running", "dead"
STATES = (QUEUED, RUNNING, DEAD)
#: What ``jobs list`` calls a queued job that has failed at least once and waits to retry.
FAILED = "failed"


@dataclass(frozen=True)
class Leased:
    """A job a worker has taken: run it, then :meth:`JobStore.finish` or :meth:`JobStore.fail`."""

    row_id: int
    job_id: str
    name: str
    payload: bytes
    attempt: int
    max_attempts: int
    request_id: str | None = None
    trace_parent: str | None = None


@dataclass(frozen=True)
class JobRecord:
    """One row of the job table, as ``jobs list`` and the test helpers show it."""

    job_id: str
    name: str
    state: str  # queued, failed (queued again after an error), running or dead
    attempts: int
    max_attempts: int
    run_at: float
    unique_key: str | None
    last_error: str | None
    payload: bytes


def owner_name() -> str:
    """``host:pid``: which worker holds a lease, for ``jobs list`` and for fencing."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


class JobStore:
    """The table ``microback_job`` (and ``microback_job_periodic``) on ``db``.

    The models are defined on ``db.Model``, so ``db.create_tables()`` creates them and
    ``microback db new --auto`` writes their migration, like the tables of sessions and tokens.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

        class Job(db.Model):  # type: ignore[name-defined, misc]
            job_id = peewee.CharField(max_length=36, unique=True)
            name = peewee.CharField(max_length=200)
            payload = peewee.BlobField()
            state = peewee.CharField(max_length=10, default=QUEUED)
            attempts = peewee.IntegerField(default=0)
            max_attempts = peewee.IntegerField()
            run_at = peewee.DoubleField()
            lease_until = peewee.DoubleField(null=True)
            owner = peewee.CharField(max_length=100, null=True)
            unique_key = peewee.CharField(max_length=200, null=True, unique=True)
            last_error = peewee.TextField(null=True)
            created_at = peewee.DoubleField()
            # The X-Request-ID of the request that enqueued it: records the job logs carry it.
            request_id = peewee.CharField(max_length=128, null=True)
            # Its traceparent (W3C trace context) when tracing is on: the job's span links it.
            trace_parent = peewee.CharField(max_length=128, null=True)

            class Meta:
                table_name = "microback_job"
                indexes = ((("state", "run_at"), False), (("state", "lease_until"), False))

        class PeriodicRun(db.Model):  # type: ignore[name-defined, misc]
            name = peewee.CharField(max_length=200, primary_key=True)
            last_run = peewee.DoubleField()

            class Meta:
                table_name = "microback_job_periodic"

        self.Job = Job
        self.PeriodicRun = PeriodicRun

    @property
    def models(self) -> list[type[peewee.Model]]:
        """The two models, for ``db.create_tables(store.models)``."""
        return [self.Job, self.PeriodicRun]

    # --- writing jobs -----------------------------------------------------------------------

    def add(
        self,
        job_id: str,
        name: str,
        payload: bytes,
        *,
        run_at: float,
        max_attempts: int,
        unique_key: str | None = None,
        request_id: str | None = None,
        trace_parent: str | None = None,
    ) -> str:
        """Insert a queued job; return its id, or the id of the job already holding
        ``unique_key`` (then nothing is inserted). ``request_id`` and ``trace_parent`` are the
        enqueuing request's id and trace context."""
        Job = self.Job
        query = Job.insert(
            job_id=job_id,
            name=name,
            payload=payload,
            run_at=run_at,
            max_attempts=max_attempts,
            unique_key=unique_key,
            created_at=time.time(),
            request_id=request_id,
            trace_parent=trace_parent,
        )
        if unique_key is None:
            query.execute()
            return job_id
        # ON CONFLICT DO NOTHING (INSERT IGNORE, INSERT OR IGNORE): a failed INSERT would abort
        # the request's transaction on PostgreSQL.
        query.on_conflict_ignore().execute()
        found = Job.select(Job.job_id).where(Job.unique_key == unique_key).scalar()
        return str(found) if found is not None else job_id

    def lease(self, limit: int, owner: str, seconds: float) -> list[Leased]:
        """Take up to ``limit`` jobs that are due, for ``seconds``; count an attempt for each."""
        Job, now = self.Job, time.time()
        query = (
            Job.select(
                Job.id,
                Job.job_id,
                Job.name,
                Job.payload,
                Job.attempts,
                Job.max_attempts,
                Job.request_id,
                Job.trace_parent,
            )
            .where((Job.state == QUEUED) & (Job.run_at <= now))
            .order_by(Job.run_at, Job.id)
            .limit(limit)
        )
        if self.db.backend != "sqlite":
            # Concurrent workers each take other rows instead of waiting on the first one's.
            query = query.for_update("FOR UPDATE SKIP LOCKED")
        with self.db.atomic():
            rows = list(query.tuples())
            if not rows:
                return []
            Job.update(
                state=RUNNING,
                attempts=Job.attempts + 1,
                lease_until=now + seconds,
                owner=owner,
            ).where(Job.id.in_([row[0] for row in rows])).execute()
        return [
            Leased(row[0], row[1], row[2], bytes(row[3]), row[4] + 1, row[5], row[6], row[7])
            for row in rows
        ]

    def renew(self, jobs: Iterable[Leased], seconds: float) -> None:
        """Extend the leases of jobs still running here (a heartbeat)."""
        Job = self.Job
        until = time.time() + seconds
        with self.db.atomic():
            for job in jobs:
                Job.update(lease_until=until).where(
                    (Job.id == job.row_id) & (Job.attempts == job.attempt) & (Job.state == RUNNING)
                ).execute()

    def finish(self, job: Leased) -> bool:
        """Delete a job that has run; False if its lease was lost to another worker."""
        Job = self.Job
        return bool(
            Job.delete()
            .where((Job.id == job.row_id) & (Job.attempts == job.attempt) & (Job.state == RUNNING))
            .execute()
        )

    def fail(self, job: Leased, error: str, retry_at: float | None) -> bool:
        """Queue a failed job again at ``retry_at``, or keep it as dead when that is ``None``."""
        Job = self.Job
        changes: dict[Any, Any] = {Job.last_error: error[:10_000], Job.lease_until: None}
        if retry_at is None:
            changes[Job.state] = DEAD
        else:
            changes.update({Job.state: QUEUED, Job.run_at: retry_at})
        return bool(
            Job.update(changes)
            .where((Job.id == job.row_id) & (Job.attempts == job.attempt) & (Job.state == RUNNING))
            .execute()
        )

    def release(self, jobs: Iterable[Leased]) -> None:
        """Put jobs this worker will not finish back in the queue, to run at once elsewhere."""
        Job = self.Job
        with self.db.atomic():
            for job in jobs:
                Job.update(state=QUEUED, lease_until=None, run_at=time.time()).where(
                    (Job.id == job.row_id) & (Job.attempts == job.attempt) & (Job.state == RUNNING)
                ).execute()

    def reclaim_expired(self) -> int:
        """Queue again the running jobs whose lease has run out (their worker died or hung);
        those that had used their last attempt become dead. Return how many were found."""
        Job, now = self.Job, time.time()
        expired = (Job.state == RUNNING) & (Job.lease_until < now)
        lost = "the worker running it stopped renewing its lease (killed or hung)"
        with self.db.atomic():
            dead = (
                Job.update(state=DEAD, lease_until=None, last_error=lost)
                .where(expired & (Job.attempts >= Job.max_attempts))
                .execute()
            )
            queued = (
                Job.update(state=QUEUED, lease_until=None, run_at=now, last_error=lost)
                .where(expired)
                .execute()
            )
        return int(dead) + int(queued)

    def claim_periodic(self, name: str, minute: float) -> bool:
        """True for exactly one caller per periodic job and minute, across all workers."""
        Run = self.PeriodicRun
        with self.db.atomic():
            Run.insert(name=name, last_run=0).on_conflict_ignore().execute()
            return bool(
                Run.update(last_run=minute)
                .where((Run.name == name) & (Run.last_run < minute))
                .execute()
            )

    # --- looking and acting -----------------------------------------------------------------

    def records(self, state: str | None = None, name: str | None = None) -> list[JobRecord]:
        """The jobs in the table, oldest due first; ``state`` may also be ``failed``."""
        Job = self.Job
        query = Job.select().order_by(Job.run_at, Job.id)
        if state == FAILED:
            query = query.where((Job.state == QUEUED) & Job.last_error.is_null(False))
        elif state is not None:
            query = query.where(Job.state == state)
        if name is not None:
            query = query.where(Job.name == name)
        return [
            JobRecord(
                job_id=row.job_id,
                name=row.name,
                state=FAILED if row.state == QUEUED and row.last_error else row.state,
                attempts=row.attempts,
                max_attempts=row.max_attempts,
                run_at=row.run_at,
                unique_key=row.unique_key,
                last_error=row.last_error,
                payload=bytes(row.payload),
            )
            for row in query
        ]

    def counts(self) -> dict[str, int]:
        """How many jobs are ``queued``, ``failed`` (queued after an error), ``running`` and
        ``dead``: one grouped query (for metrics)."""
        Job = self.Job
        failed = peewee.fn.SUM(peewee.Case(None, [(Job.last_error.is_null(False), 1)], 0))
        query = Job.select(Job.state, peewee.fn.COUNT(Job.id), failed).group_by(Job.state)
        counts = dict.fromkeys((QUEUED, FAILED, RUNNING, DEAD), 0)
        for state, count, with_error in query.tuples():
            if state == QUEUED:
                counts[FAILED] = int(with_error or 0)
                count -= counts[FAILED]
            counts[state] = counts.get(state, 0) + int(count)
        return counts

    def retry(self, job_ids: Iterable[str] | None = None) -> int:
        """Queue dead jobs again now, with a fresh set of attempts (all of them by default)."""
        Job = self.Job
        query = Job.update(
            state=QUEUED,
            attempts=0,
            run_at=time.time(),
            lease_until=None,
            owner=None,
            last_error=None,
        ).where(Job.state == DEAD)
        if job_ids is not None:
            query = query.where(Job.job_id.in_(list(job_ids)))
        return int(query.execute())

    def purge(self, state: str | None = DEAD, job_ids: Iterable[str] | None = None) -> int:
        """Delete jobs: the dead ones by default, those in ``state``, or those named."""
        Job = self.Job
        query = Job.delete()
        if state == FAILED:
            query = query.where((Job.state == QUEUED) & Job.last_error.is_null(False))
        elif state is not None:
            query = query.where(Job.state == state)
        if job_ids is not None:
            query = query.where(Job.job_id.in_(list(job_ids)))
        return int(query.execute())
