"""Prometheus metrics of an app, summed over all worker processes; opt-in.

``enable_metrics(app)`` counts every request by route template (never the raw path: one
series per route, however many ids the paths hold), method and status class; observes its
duration per route; and keeps the requests in flight. ``microback serve`` also counts the
event-loop blocks it warns about (:mod:`microback.server.blocked`). With a ``Database``, the
pool's connections in use, its waits, their total time and the waits that timed out (summed
over workers, like the rest); with ``Jobs``, the jobs in the table by state (``queued``,
``failed``: waiting for a retry, ``running``, ``dead``), counted by the process answering the
scrape: the table is shared, so these are not summed.

Several worker processes serve one app, and a scrape reaches one of them: prometheus-client's
multiprocess mode has each process write its values to files in ``PROMETHEUS_MULTIPROC_DIR``,
and the process that answers the scrape adds them all up. ``microback serve`` makes a fresh
directory per run (unless the variable is set already), before any worker starts, removes it
when it stops, and tells prometheus-client when a worker dies, so its in-flight gauge stops
counting. Without the variable (a test, another server) the values are this process's own.

The route is not public: it answers 404 to a client whose address is not in ``allow_from``
(loopback by default), so scrapes come from the host itself or a sidecar; put the addresses
of your Prometheus servers there otherwise.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .app import App
from .http import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["enable_metrics"]

logger = logging.getLogger("microback.metrics")

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds: the latency buckets, from a cache hit to a request that should have been a job.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}


class Metrics:
    """The app's instruments; ``app.extensions["metrics"]``."""

    def __init__(self, registry: Any = None, app: App | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.app = app
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "microback_requests",
            "Requests answered, by route template, method and status class.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "microback_request_duration_seconds",
            "Time from the request reaching the app to its response being returned.",
            ["route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "microback_requests_in_flight",
            "Requests inside the app now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.blocked = Counter(
            "microback_event_loop_blocked",
            "Blocks of the event loop longer than the threshold (--blocked-loop-threshold).",
            registry=self.registry,
        )

        self.pool_in_use = Gauge(
            "microback_db_pool_connections_in_use",
            "Database connections checked out of the pool now, all workers together.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.pool_waits = Counter(
            "microback_db_pool_waits",
            "Requests (or jobs) that found no free pooled connection and waited for one.",
            registry=self.registry,
        )
        self.pool_wait_seconds = Counter(
            "microback_db_pool_wait_seconds",
            "Time spent waiting for a pooled connection.",
            registry=self.registry,
        )
        self.pool_timeouts = Counter(
            "microback_db_pool_timeouts",
            "Waits for a pooled connection that gave up (answered 503).",
            registry=self.registry,
        )
        self._pool_seen: tuple[Any, int, float, int] = (None, 0, 0.0, 0)
        self.jobs = _JobsCollector(self)
        self.registry.register(self.jobs)

    def flush_pool(self) -> None:
        """Move the app's pool counters into prometheus-client (at each flush)."""
        db = self.app.extensions.get("db") if self.app is not None else None
        pool: Any = db.database if db is not None else None
        stats = getattr(pool, "pool_stats", None)
        if stats is None:  # no database, or SQLite ':memory:' (one shared connection)
            return
        self.pool_in_use.set(pool.connections_in_use)
        seen, waits, seconds, timeouts = self._pool_seen
        if seen is not stats:  # a new pool (db.configure()): its counters start at 0
            waits, seconds, timeouts = 0, 0.0, 0
        if stats.waits != waits:
            self.pool_waits.inc(stats.waits - waits)
            self.pool_wait_seconds.inc(stats.wait_seconds - seconds)
        if stats.timeouts != timeouts:
            self.pool_timeouts.inc(stats.timeouts - timeouts)
        self._pool_seen = (stats, stats.waits, stats.wait_seconds, stats.timeouts)

    def count_block(self, seconds: float) -> None:
        """Count one event-loop block (``microback serve`` wires this in)."""
        self.blocked.inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text format of every process's figures (or this one's) and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if os.environ.get(MULTIPROC_VARIABLE):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(self.jobs)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Measured:
    """WSGI middleware around ``app.wsgi_app``: counts and times every request.

    Changing a prometheus-client value takes a lock, and in multiprocess mode a write to its
    file; a request changed six, a large part of a small request's cost (figures in
    benchmarks/README.md, ``operations.py``). So a request only adds to plain dicts here (no
    lock is needed between greenlets, which do not preempt each other), and :meth:`flush`
    moves the sums into prometheus-client once a second and before each scrape, one change per
    series. A scrape thus sees other workers' figures as of their last flush, at most a second
    old. Without gevent's patching (threads could preempt), every request flushes at once.
    """

    def __init__(self, wrapped: WSGIApplication, metrics: Metrics) -> None:
        self.wrapped = wrapped
        self.metrics = metrics
        self.bounds = BUCKETS
        self.in_flight = 0
        self._counts: dict[tuple[str, str, int], int] = {}
        self._observed: dict[str, list[float]] = {}  # route: [sum, count in each bucket...]
        self._batched = _cooperative()
        self._flushing = False
        os.register_at_fork(after_in_child=self._forked)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        status = [500]

        def start(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = int(status_line[:3])
            return start_response(status_line, headers, exc_info)

        if not self._flushing:  # the first request of this process (a worker)
            self._start_flusher()
        self.in_flight += 1
        started = time.perf_counter()
        try:
            return self.wrapped(environ, start)
        finally:
            elapsed = time.perf_counter() - started
            self.in_flight -= 1
            route = environ.get("microback.route") or "unmatched"
            key = (route, environ.get("REQUEST_METHOD", ""), status[0] // 100)
            counts = self._counts
            counts[key] = counts.get(key, 0) + 1
            observed = self._observed.get(route)
            if observed is None:
                observed = self._observed[route] = [0.0] * (len(self.bounds) + 2)
            # Counts kept as floats, in one list with the sum: one lookup per request.
            observed[0] += elapsed
            observed[1 + bisect_left(self.bounds, elapsed)] += 1
            if not self._batched:
                self.flush()

    def flush(self) -> None:
        """Move the sums gathered since the last flush into prometheus-client."""
        metrics = self.metrics
        counts, self._counts = self._counts, {}
        observed, self._observed = self._observed, {}
        for (route, method, klass), n in counts.items():
            metrics.requests.labels(route, method, _STATUS_CLASSES.get(klass, "5xx")).inc(n)
        for route, sums in observed.items():
            child = metrics.duration.labels(route)
            # Histogram.observe() one at a time would cost what batching saves: add to its
            # sum and to each bucket's own (non-cumulative) count, as observe() does.
            child._sum.inc(sums[0])
            for index, count in enumerate(sums[1:]):
                if count:
                    child._buckets[index].inc(count)
        metrics.in_flight.set(self.in_flight)
        metrics.flush_pool()

    def _forked(self) -> None:
        self._counts, self._observed, self.in_flight = {}, {}, 0  # the parent's, not ours
        self._flushing = False

    def _start_flusher(self) -> None:
        self._flushing = True
        if self._batched:
            threading.Thread(target=self._flush_every_second, daemon=True).start()

    def _flush_every_second(self) -> None:
        # A greenlet under gevent's patching (the only case it runs): it flushes between
        # requests, never in the middle of one's additions.
        pid = os.getpid()
        while os.getpid() == pid:
            time.sleep(1.0)
            self.flush()


class _JobsCollector:
    """``microback_jobs{state}``: the app's jobs by state, counted in the table at each scrape.

    The job table is shared by every worker and host, so the count is made by the process
    answering the scrape (one grouped query), not summed over processes. A scrape whose query
    fails (the database is down) leaves the family out; the other figures still answer.
    """

    STATES = ("queued", "failed", "running", "dead")

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Any]:
        return [self._family()]

    def collect(self) -> list[Any]:
        app = self.metrics.app
        jobs = app.extensions.get("jobs") if app is not None else None
        store = getattr(jobs, "store", None)  # RedisJobs keeps its jobs in Redis: no table
        if store is None:
            return []
        try:
            counts = store.counts()
        except Exception as exc:
            logger.warning("metrics: the jobs could not be counted: %s", exc)
            return []
        family = self._family()
        for state in self.STATES:
            family.add_metric([state], counts.get(state, 0))
        return [family]

    def _family(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        return GaugeMetricFamily(
            "microback_jobs",
            "Jobs in the table by state: queued (due now or later), failed (queued again "
            "after an error), running (leased by a worker), dead (out of attempts).",
            labels=["state"],
        )


def _cooperative() -> bool:
    """Whether gevent patched threads into greenlets (``microback serve`` does)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))


def enable_metrics(
    app: App,
    *,
    path: str = "/metrics",
    allow_from: Iterable[str] = ("127.0.0.0/8", "::1/128"),
) -> Metrics:
    """Measure *app*'s requests and answer scrapes at *path* (see the module docstring).

    *allow_from* are the networks (``"10.0.0.0/8"``) or addresses allowed to scrape; anyone
    else gets 404. Needs ``prometheus-client`` (installed with microback).
    """
    networks = [ipaddress.ip_network(item, strict=False) for item in allow_from]
    metrics = Metrics(app=app)
    app.extensions["metrics"] = metrics

    def scrape(request: Request) -> Response:
        try:
            client = ipaddress.ip_address(request.environ.get("REMOTE_ADDR", ""))
        except ValueError:
            client = None
        if client is None or not any(client in network for network in networks):
            return Response.buffered(b"not found\n", 404, "text/plain; charset=utf-8")
        measured.flush()  # this process's figures up to now
        body, content_type = metrics.exposition()
        return Response.buffered(body, 200, content_type, [("Cache-Control", "no-store")])

    measured = _Measured(app.wsgi_app, metrics)
    app.add_route(path, scrape, ["GET"], endpoint="metrics")
    app.wsgi_app = measured  # type: ignore[method-assign]
    return metrics


def prepare_multiprocess_directory() -> str | None:
    """Make a fresh ``PROMETHEUS_MULTIPROC_DIR`` for this run, unless one is set; give it.

    Called by ``microback serve`` before the app is imported (prometheus-client picks its mode
    when imported). Returns the directory it made (to remove at exit), or ``None``.
    """
    if os.environ.get(MULTIPROC_VARIABLE):
        return None
    import tempfile

    directory = tempfile.mkdtemp(prefix="microback-metrics-")
    os.environ[MULTIPROC_VARIABLE] = directory
    return directory


def mark_process_dead(pid: int) -> None:
    """Tell prometheus-client that worker *pid* is gone (its live gauges stop counting)."""
    if os.environ.get(MULTIPROC_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
