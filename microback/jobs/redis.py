"""``RedisJobs``: the same job functions on huey's own Redis storage, for apps that have Redis.

This is huey as it is, with its guarantees: a job is taken off the Redis list when a worker
starts it, so a worker killed mid-job loses that job (at most once, as huey documents), and
enqueueing is not part of the request's database transaction (a request that fails after
enqueueing leaves its job queued). Retries are huey's: ``max_attempts - 1`` retries, the delay
doubling from ``backoff`` seconds, without jitter, and a job that fails its last attempt is
logged and dropped (no dead state). ``microback worker`` runs huey's consumer with greenlet
workers. Choose the database storage (:class:`~microback.jobs.Jobs`) unless a job lost to a
crash costs nothing.
"""

from __future__ import annotations

import datetime
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._huey import task_name
from .queue import Enqueued, Job, JobFunction, Jobs
from .store import QUEUED, JobRecord

if TYPE_CHECKING:
    from ..app import App

__all__ = ["RedisJobs"]

logger = logging.getLogger("microback.jobs")


class RedisJobs(Jobs):
    """Background jobs in Redis through huey's ``RedisHuey``: ``RedisJobs(app, url)``.

    Declared, enqueued and tested like :class:`~microback.jobs.Jobs` (``unique_key`` is not
    available); see the module's docstring for what Redis does not guarantee.
    """

    def __init__(
        self,
        app: App | None = None,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        name: str = "microback",
        max_attempts: int = 5,
        backoff: float = 2.0,
    ) -> None:
        from huey import RedisHuey

        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts!r}")
        self.max_attempts = max_attempts
        self.backoff = float(backoff)
        self.max_backoff = float("inf")
        self.lease = 0.0  # no leases: huey takes a job off the list
        self.huey = RedisHuey(name, url=url, results=False)
        self.app_extensions = {}
        self.functions = {}
        self.periodic_jobs = []
        if app is not None:
            self.init_app(app)

    def _register(self, func: Callable[..., Any], name: str | None, attempts: int) -> Any:
        job_name = name  # filled in below, once huey has named the task

        @functools.wraps(func)
        def run(*args: Any, task: Any, **kwargs: Any) -> Any:
            job = Job(task.id, job_name or "", attempts - task.retries, attempts)
            return func(job, *args, **kwargs)

        wrapper = self.huey.task(
            name=name or getattr(func, "__name__", None),
            context=True,
            retries=attempts - 1,
            retry_delay=self.backoff,
            retry_backoff=2.0,
        )(run)
        if job_name is None:
            job_name = task_name(self.huey, wrapper)
        return wrapper

    def periodic(
        self,
        schedule: Callable[[datetime.datetime], bool],
        *,
        name: str | None = None,
        max_attempts: int | None = None,
    ) -> Callable[[Callable[..., Any]], JobFunction[..., Any]]:
        """Declare a job that huey's consumer enqueues each minute ``schedule`` accepts."""

        def declare(func: Callable[..., Any]) -> JobFunction[..., Any]:
            function: JobFunction[..., Any] = self.task(func, name=name, max_attempts=max_attempts)
            periodic = self.huey.periodic_task(schedule, name=f"{function.name}.periodic")

            def enqueue() -> None:
                function.enqueue()

            periodic(enqueue)
            return function

        return declare

    def add(
        self, function: JobFunction[Any, Any], task: Any, run_at: float, unique_key: str | None
    ) -> str:
        if unique_key is not None:
            raise ValueError("unique_key needs the database storage (Jobs(app, db))")
        when = datetime.datetime.fromtimestamp(run_at, datetime.timezone.utc)
        if when > datetime.datetime.now(datetime.timezone.utc):
            task.eta = when.replace(tzinfo=None)  # huey keeps naive UTC
        self.huey.enqueue(task)
        return str(task.id)

    def run_pending(self, *, limit: int = 1000, include_scheduled: bool = False) -> int:
        """Run the queued jobs here, one at a time, as huey's consumer would (for tests)."""
        ran = 0
        while ran < limit:
            task = self.huey.dequeue()
            if task is None:
                break
            if include_scheduled:
                task.eta = None
            self.huey.execute(task)
            ran += 1
        return ran

    def records(self, state: str | None = None, name: str | None = None) -> list[JobRecord]:
        """The jobs waiting in the Redis queue (huey keeps no record of running ones)."""
        return [item.record for item in self._pending(name) if state in (None, QUEUED)]

    def enqueued(
        self, function: JobFunction[Any, Any] | None = None, *, state: str | None = None
    ) -> list[Enqueued]:
        return self._pending(function.name if function else None)

    def _pending(self, name: str | None) -> list[Enqueued]:
        found = []
        for task in self.huey.pending():
            function = next(
                (f for f in self.functions.values() if f.wrapper.task_class is type(task)), None
            )
            if function is None or (name is not None and function.name != name):
                continue
            eta = task.eta.replace(tzinfo=datetime.timezone.utc).timestamp() if task.eta else 0
            record = JobRecord(
                job_id=task.id,
                name=function.name,
                state=QUEUED,
                attempts=function.max_attempts - 1 - task.retries,
                max_attempts=function.max_attempts,
                run_at=eta,
                unique_key=None,
                last_error=None,
                payload=b"",
            )
            found.append(Enqueued(record, tuple(task.args), dict(task.kwargs)))
        return found

    def retry(self, job_ids: list[str] | None = None) -> int:
        raise ValueError("Redis keeps no dead jobs to retry (huey drops a job's last failure)")

    def purge(self, state: str | None = "dead", job_ids: list[str] | None = None) -> int:
        if state is not None or job_ids:
            raise ValueError("with Redis, purge empties the whole queue: use --state all")
        count = len(self.huey.pending())
        self.huey.storage.flush_queue()
        return count

    def close(self) -> None:
        """Close this process's Redis connections."""
        self.huey.storage.conn.connection_pool.disconnect()

    def run_consumer(
        self, concurrency: int, poll_interval: float, graceful_timeout: float
    ) -> None:
        """Run huey's consumer with ``concurrency`` greenlets until SIGTERM or SIGINT."""
        consumer = self.huey.create_consumer(
            workers=concurrency,
            worker_type="greenlet",
            initial_delay=poll_interval,
            max_delay=poll_interval,
            backoff=1.0,
            shutdown_timeout=graceful_timeout,
            graceful_signal="TERM",
        )
        consumer.run()
