"""``Jobs``: declare background jobs, enqueue them, and run one that a worker has leased.

huey is the engine underneath: each job function is registered as a huey task, each enqueue
makes a huey ``Task`` (its id is the job's id) and huey serializes it, and periodic jobs use
huey's ``crontab``. What huey's SQL storage lacks, leases, attempts, back-off and a dead
letter state, is in :mod:`microback.jobs.store`; the worker loop is :mod:`microback.jobs.worker`.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

import huey
from huey.storage import BlackHoleStorage

from ..server.context import bind, current_environ
from ._huey import task_name
from .store import JobRecord, JobStore, Leased

if TYPE_CHECKING:
    from ..app import App
    from ..db import Database

__all__ = ["Enqueued", "Job", "JobFunction", "Jobs", "crontab"]

logger = logging.getLogger("microback.jobs")

crontab = huey.crontab
_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Job:
    """What a job function receives first: ``def send_receipt(job, order_id): ...``.

    ``id`` is the same on every attempt: record a job's effect under it (a unique column) and
    a second run after a crash finds the effect already there. ``attempt`` counts from 1.
    """

    id: str
    name: str
    attempt: int
    max_attempts: int


class JobFunction(Generic[_P, _R]):
    """A function declared with ``@jobs.task``: call ``.enqueue(...)`` to run it in a worker."""

    def __init__(
        self,
        jobs: Jobs,
        func: Callable[..., _R],
        wrapper: huey.api.TaskWrapper,
        *,
        max_attempts: int,
        name: str | None = None,
    ) -> None:
        self.jobs = jobs
        self.func = func
        self.wrapper = wrapper
        self.max_attempts = max_attempts
        #: The name stored with each job: ``name=`` if given, else ``module.function``.
        self.name: str = name or task_name(jobs.huey, wrapper)
        self.__doc__ = func.__doc__
        self.__name__ = getattr(func, "__name__", self.name)

    def __call__(self, job: Job, *args: Any, **kwargs: Any) -> _R:
        """Run the function here, now (for a test of the function itself)."""
        return self.func(job, *args, **kwargs)

    def enqueue(self, *args: Any, **kwargs: Any) -> str:
        """Queue a run with these arguments, due now; return the job's id.

        Inside a request it is part of the request's transaction: a request that fails
        leaves no job, and workers see the job only once the request has committed.
        """
        return self.schedule(args, kwargs)

    def schedule(
        self,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        delay: float | datetime.timedelta | None = None,
        eta: datetime.datetime | None = None,
        unique_key: str | None = None,
    ) -> str:
        """Queue a run due after ``delay`` seconds or at ``eta``; return the job's id.

        With ``unique_key``, a second schedule while a job with that key is queued, running or
        dead is a no-op that returns the first job's id. A naive ``eta`` is taken as UTC.
        """
        if delay is not None and eta is not None:
            raise ValueError("give delay or eta, not both")
        run_at = time.time()
        if isinstance(delay, datetime.timedelta):
            run_at += delay.total_seconds()
        elif delay is not None:
            run_at += float(delay)
        elif eta is not None:
            if eta.tzinfo is None:
                eta = eta.replace(tzinfo=datetime.timezone.utc)
            run_at = eta.timestamp()
        if unique_key is not None and not 0 < len(unique_key) <= 200:
            raise ValueError("unique_key must be 1 to 200 characters long")
        task = self.wrapper.s(*args, **(kwargs or {}))
        return self.jobs.add(self, task, run_at, unique_key)


class Jobs:
    """Background jobs stored in ``db``, the app's database: ``jobs = Jobs(app, db)``.

    Declare jobs with :meth:`task` and :meth:`periodic`; run them with
    ``microback worker module:app``. Each job is retried after an error, ``max_attempts``
    times in all, waiting ``backoff * 2 ** (attempt - 1)`` seconds (at most ``max_backoff``,
    less up to half of it at random), then kept as dead with its last error. A worker holds a
    job for ``lease`` seconds at a time and renews that while the job runs; a job whose worker
    dies is run again once its lease has run out.
    """

    def __init__(
        self,
        app: App | None = None,
        db: Database | None = None,
        *,
        lease: float = 60.0,
        max_attempts: int = 5,
        backoff: float = 2.0,
        max_backoff: float = 3600.0,
    ) -> None:
        if db is None:
            raise TypeError("Jobs needs the app's Database: Jobs(app, db)")
        if lease < 1:
            raise ValueError(f"lease must be at least 1 second, not {lease!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts!r}")
        self.db = db
        self.lease = float(lease)
        self.max_attempts = max_attempts
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        # huey registers the tasks and serializes them; its storage is never used (ours is).
        self.huey = huey.Huey("microback", results=False, storage_class=BlackHoleStorage)
        self.store = JobStore(db)
        #: The app's extensions (``app.extensions``) once attached: tracing is found there.
        self.app_extensions: dict[str, Any] = {}
        self.functions: dict[str, JobFunction[Any, Any]] = {}
        self.periodic_jobs: list[tuple[JobFunction[Any, Any], Callable[..., bool]]] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: App) -> None:
        """Make ``app.extensions["jobs"]`` this object, where ``microback worker`` finds it."""
        app.extensions["jobs"] = self
        self.app_extensions = app.extensions

    # --- declaring --------------------------------------------------------------------------

    def task(
        self,
        func: Callable[..., _R] | None = None,
        *,
        name: str | None = None,
        max_attempts: int | None = None,
    ) -> Any:
        """Declare a job function; its first parameter receives the :class:`Job`.

        ``@jobs.task`` or ``@jobs.task(max_attempts=10, name="mail.send")``.
        """

        def declare(func: Callable[..., _R]) -> JobFunction[..., _R]:
            attempts = max_attempts if max_attempts is not None else self.max_attempts
            if attempts < 1:
                raise ValueError(f"max_attempts must be at least 1, not {attempts!r}")
            wrapper = self._register(func, name, attempts)
            function: JobFunction[..., _R] = JobFunction(
                self, func, wrapper, max_attempts=attempts, name=name
            )
            if function.name in self.functions:
                raise ValueError(f"a job function named {function.name!r} is already declared")
            self.functions[function.name] = function
            return function

        return declare(func) if func is not None else declare

    def _register(self, func: Callable[..., Any], name: str | None, attempts: int) -> Any:
        """Register ``func`` with huey; give its ``TaskWrapper``."""
        return self.huey.task(name=name)(func)

    def periodic(
        self,
        schedule: Callable[[datetime.datetime], bool],
        *,
        name: str | None = None,
        max_attempts: int | None = None,
    ) -> Callable[[Callable[..., _R]], JobFunction[..., _R]]:
        """Declare a job that workers enqueue each minute ``schedule`` accepts (UTC).

        ``@jobs.periodic(crontab(minute="*/15"))``. However many workers run, each due minute
        is enqueued once. The function takes only the :class:`Job`.
        """

        def declare(func: Callable[..., _R]) -> JobFunction[..., _R]:
            function: JobFunction[..., _R] = self.task(func, name=name, max_attempts=max_attempts)
            self.periodic_jobs.append((function, schedule))
            return function

        return declare

    def add(
        self, function: JobFunction[Any, Any], task: Any, run_at: float, unique_key: str | None
    ) -> str:
        """Store huey ``task`` of ``function``, due at ``run_at``; return the job's id.

        Under ``microback serve``, the id of the request being served goes with it, and with
        tracing on, the current span's context.
        """
        environ = current_environ()
        tracing = self.app_extensions.get("tracing")
        return self.store.add(
            task.id,
            function.name,
            self.huey.serialize_task(task),
            run_at=run_at,
            max_attempts=function.max_attempts,
            unique_key=unique_key,
            request_id=environ.get("microback.request_id") if environ is not None else None,
            trace_parent=tracing.current_context() if tracing is not None else None,
        )

    # --- running ----------------------------------------------------------------------------

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt``: doubling, with jitter."""
        delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        # "Equal jitter": at least half the delay, so retries still back off, spread at random
        # so that jobs which failed together (a partner was down) do not retry together.
        return float(delay / 2 + random.uniform(0, delay / 2))  # noqa: S311 (jitter is not a secret)

    def execute(self, leased: Leased) -> bool:
        """Run one leased job here and record how it went; True when it succeeded.

        Log records made meanwhile carry the job's id and the enqueuing request's
        (``job_id``, ``request_id``; :mod:`microback.server.context`).
        """
        outer = current_environ()
        bind({"microback.job_id": leased.job_id, "microback.request_id": leased.request_id})
        tracing = self.app_extensions.get("tracing")
        try:
            if tracing is None:
                return self._execute(leased)
            with tracing.job(leased) as span:
                succeeded = self._execute(leased)
                if not succeeded:
                    tracing.failed(span, "the job raised; see its log record")
                return succeeded
        finally:
            bind(outer)

    def _execute(self, leased: Leased) -> bool:
        started = time.perf_counter()
        function = self.functions.get(leased.name)
        try:
            if function is None:
                raise LookupError(f"no job function named {leased.name!r} is declared in this app")
            task = self.huey.deserialize_task(leased.payload)
            job = Job(leased.job_id, leased.name, leased.attempt, leased.max_attempts)
            function.func(job, *task.args, **task.kwargs)
        except Exception as exc:
            self._end_connection()
            elapsed = (time.perf_counter() - started) * 1000
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            retry_at = None
            if leased.attempt < leased.max_attempts and function is not None:
                retry_at = time.time() + self.retry_delay(leased.attempt)
            self.store.fail(leased, error, retry_at)
            if retry_at is None:
                logger.error(
                    "job %s %s attempt %d/%d failed after %.1f ms, now dead: %s",
                    leased.job_id, leased.name, leased.attempt, leased.max_attempts,
                    elapsed, error,
                    exc_info=exc,
                )  # fmt: skip
            else:
                logger.warning(
                    "job %s %s attempt %d/%d failed after %.1f ms, retry in %.1f s: %s",
                    leased.job_id, leased.name, leased.attempt, leased.max_attempts,
                    elapsed, retry_at - time.time(), error,
                    exc_info=exc,
                )  # fmt: skip
            self._end_connection()
            return False
        self._end_connection()
        finished = self.store.finish(leased)
        logger.info(
            "job %s %s attempt %d/%d done in %.1f ms%s",
            leased.job_id, leased.name, leased.attempt, leased.max_attempts,
            (time.perf_counter() - started) * 1000,
            "" if finished else " (its lease had been lost: another worker may run it again)",
        )  # fmt: skip
        self._end_connection()
        return True

    def close(self) -> None:
        """Close this process's database connections (before a fork, at the end of a command)."""
        self.db.close_all()

    def _end_connection(self) -> None:
        """Roll back what a job left uncommitted and give its connection back to the pool."""
        database = self.db.database
        if database.is_closed():
            return
        if database.in_transaction():
            logger.error("a job left a transaction open; rolling it back")
            database.rollback()
            while database.transaction_depth():
                database.pop_transaction()
        self.db.release()

    def run_pending(self, *, limit: int = 1000, include_scheduled: bool = False) -> int:
        """Run the due jobs in this process, one at a time, until none is left; return how
        many ran. For tests (``microback.testing.run_jobs``) and scripts.

        Jobs that a run enqueues run too; a failed job is retried only when its retry is due,
        so a job that keeps failing is not retried in a loop. ``include_scheduled`` runs jobs
        due later as well, as if their time had come.
        """
        from .store import owner_name

        ran = 0
        owner = owner_name()
        while ran < limit:
            if include_scheduled:
                self._make_due()
            leased = self.store.lease(1, owner, self.lease)
            if not leased:
                break
            self.execute(leased[0])
            ran += 1
        return ran

    def _make_due(self) -> None:
        Job = self.store.Job
        Job.update(run_at=time.time()).where(
            (Job.state == "queued") & Job.last_error.is_null() & (Job.run_at > time.time())
        ).execute()

    def enqueue_periodic(self, now: float | None = None) -> int:
        """Enqueue the periodic jobs due this minute, once across all workers; return how many."""
        now = time.time() if now is None else now
        minute = now - now % 60
        moment = datetime.datetime.fromtimestamp(minute, datetime.timezone.utc).replace(
            tzinfo=None
        )
        count = 0
        for function, schedule in self.periodic_jobs:
            if not schedule(moment):
                continue
            with self.db.atomic():  # the claim and the job together, or neither
                if self.store.claim_periodic(function.name, minute):
                    function.enqueue()
                    count += 1
        return count

    def records(self, state: str | None = None, name: str | None = None) -> list[JobRecord]:
        """The jobs in the table: queued, failed (to be retried), running or dead."""
        return self.store.records(state, name)

    def retry(self, job_ids: list[str] | None = None) -> int:
        """Queue dead jobs again (those named, or all), with a fresh set of attempts."""
        return self.store.retry(job_ids)

    def purge(self, state: str | None = "dead", job_ids: list[str] | None = None) -> int:
        """Delete jobs: the dead ones by default, those in ``state`` (``None``: any), or those
        named; return how many."""
        return self.store.purge(state, job_ids)

    def enqueued(
        self, function: JobFunction[Any, Any] | None = None, *, state: str | None = None
    ) -> list[Enqueued]:
        """The jobs in the table with their arguments, oldest due first (for tests)."""
        found = []
        for record in self.store.records(state, function.name if function else None):
            task = self.huey.deserialize_task(record.payload)
            found.append(Enqueued(record, tuple(task.args), dict(task.kwargs)))
        return found


@dataclass(frozen=True)
class Enqueued:
    """A job in the table and the arguments it was enqueued with."""

    record: JobRecord
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def name(self) -> str:
        """The job function's name (``module.function`` unless ``name=`` was given)."""
        return self.record.name

    @property
    def state(self) -> str:
        """``queued``, ``failed`` (waiting to retry), ``running`` or ``dead``."""
        return self.record.state
