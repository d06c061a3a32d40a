"""The worker: lease due jobs, run up to N at a time in greenlets, renew their leases, stop
gracefully.

One loop leases as many jobs as there are free places, so a busy queue costs one query per
batch, not per job. A heartbeat renews the leases of the jobs running here; a job whose lease
runs out anyway (this process was killed, or its loop blocked for longer than the lease) is
queued again by any worker's periodic sweep. On SIGTERM or SIGINT the worker takes no more jobs,
waits up to ``graceful_timeout`` for those running, then stops the rest and puts them back in
the queue, so they run again elsewhere at once rather than after their lease.

It runs under gevent (``microback worker`` patches first); the job functions run in its
greenlets, each with its own database connection from the app's pool.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event
import gevent.pool

from .store import Leased, owner_name

if TYPE_CHECKING:
    from .queue import Jobs

__all__ = ["Worker"]

logger = logging.getLogger("microback.jobs")


class Worker:
    """Run ``jobs`` in this process until :meth:`stop` (SIGTERM or SIGINT under :meth:`run`)."""

    def __init__(
        self,
        jobs: Jobs,
        *,
        concurrency: int = 10,
        poll_interval: float = 1.0,
        graceful_timeout: float = 30.0,
    ) -> None:
        self.jobs = jobs
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.graceful_timeout = graceful_timeout
        self.owner = f"{owner_name()}:{id(self) % 10_000}"
        self.running: dict[Any, Leased] = {}  # greenlet -> its job
        self._pool = gevent.pool.Pool(concurrency)
        self._stopping = gevent.event.Event()
        self._next_sweep = 0.0
        self._next_periodic = 0.0

    def stop(self) -> None:
        """Take no more jobs; :meth:`run` returns once the running ones finish or are released."""
        self._stopping.set()

    def run(self) -> None:
        """Work until stopped; install SIGTERM and SIGINT handlers that call :meth:`stop`."""
        handlers = [gevent.signal_handler(s, self.stop) for s in (signal.SIGTERM, signal.SIGINT)]
        heartbeat = gevent.spawn(self._heartbeat)
        logger.info(
            "worker %s: up to %d jobs at a time, lease %g s",
            self.owner,
            self.concurrency,
            self.jobs.lease,
        )
        try:
            while not self._stopping.is_set():
                try:
                    self._step()
                except Exception as exc:  # the database is down, most likely: wait, try again
                    logger.error("worker %s: %s; retrying in %g s", self.owner, exc, 1.0)
                    self._stopping.wait(1.0)
                finally:
                    self.jobs._end_connection()
            self._drain()
        finally:
            heartbeat.kill()
            for handler in handlers:
                handler.cancel()
            self.jobs.db.close_all()
        logger.info("worker %s stopped", self.owner)

    def _step(self) -> None:
        now = time.time()
        store = self.jobs.store
        if now >= self._next_sweep:
            found = store.reclaim_expired()
            if found:
                logger.warning("worker %s: %d job(s) had lost their worker", self.owner, found)
            self._next_sweep = now + min(5.0, self.jobs.lease / 2)
        if self.jobs.periodic_jobs and now >= self._next_periodic:
            self.jobs.enqueue_periodic(now)
            self._next_periodic = now - now % 60 + 60
        free = self._pool.free_count()
        if free == 0:
            self.jobs._end_connection()
            self._pool.wait_available(timeout=self.poll_interval)
            return
        leased = store.lease(free, self.owner, self.jobs.lease)
        self.jobs._end_connection()
        for job in leased:
            greenlet = self._pool.spawn(self._execute, job)
            self.running[greenlet] = job
        if len(leased) < free:  # the queue is drained: wait for more, or for stop()
            self._stopping.wait(self.poll_interval)

    def _execute(self, job: Leased) -> None:
        try:
            self.jobs.execute(job)
        finally:
            self.running.pop(gevent.getcurrent(), None)

    def _heartbeat(self) -> None:
        interval = self.jobs.lease / 3
        while True:
            gevent.sleep(interval)
            if not self.running:
                continue
            try:
                self.jobs.store.renew(list(self.running.values()), self.jobs.lease)
            except Exception as exc:
                logger.error("worker %s: could not renew leases: %s", self.owner, exc)
            finally:
                self.jobs._end_connection()

    def _drain(self) -> None:
        if self.running:
            logger.info(
                "worker %s: stopping; waiting up to %g s for %d job(s)",
                self.owner,
                self.graceful_timeout,
                len(self.running),
            )
        self._pool.join(timeout=self.graceful_timeout)
        left = list(self.running.values())
        if not left:
            return
        self._pool.kill(timeout=5)
        try:
            self.jobs.store.release(left)
        finally:
            self.jobs._end_connection()
        logger.warning(
            "worker %s: %d job(s) did not finish in %g s; released to run again: %s",
            self.owner,
            len(left),
            self.graceful_timeout,
            ", ".join(job.job_id for job in left),
        )
