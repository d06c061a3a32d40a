"""Prometheus metrics of an app, summed over all worker processes; opt-in.

``enable_metrics(app)`` counts every request by route template (never the raw path: one
series per route, however many ids the paths hold), method and status class; observes its
duration per route; and keeps the requests in flight. ``microback serve`` also counts the
event-loop blocks it warns about (:mod:`microback.server.blocked`).

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
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .app import App
from .http import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["enable_metrics"]

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds: the latency buckets, from a cache hit to a request that should have been a job.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}


class Metrics:
    """The app's instruments; ``app.extensions["metrics"]``."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Measured:
    """WSGI middleware around ``app.wsgi_app``: counts and times every request."""

    def __init__(self, wrapped: WSGIApplication, metrics: Metrics) -> None:
        self.wrapped = wrapped
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[str, Any] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        metrics = self.metrics
        status = [500]

        def start(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = int(status_line[:3])
            return start_response(status_line, headers, exc_info)

        metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            return self.wrapped(environ, start)
        finally:
            elapsed = time.perf_counter() - started
            metrics.in_flight.dec()
            route = environ.get("microback.route") or "unmatched"
            key = (route, environ.get("REQUEST_METHOD", ""), status[0] // 100)
            counter = self._children.get(key)
            if counter is None:  # labels() takes a lock and builds a tuple: once per series
                counter = metrics.requests.labels(
                    key[0], key[1], _STATUS_CLASSES.get(key[2], "5xx")
                )
                self._children[key] = counter
            counter.inc()
            histogram = self._durations.get(route)
            if histogram is None:
                histogram = self._durations[route] = metrics.duration.labels(route)
            histogram.observe(elapsed)


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
    metrics = Metrics()
    app.extensions["metrics"] = metrics

    def scrape(request: Request) -> Response:
        try:
            client = ipaddress.ip_address(request.environ.get("REMOTE_ADDR", ""))
        except ValueError:
            client = None
        if client is None or not any(client in network for network in networks):
            return Response.buffered(b"not found\n", 404, "text/plain; charset=utf-8")
        body, content_type = metrics.exposition()
        return Response.buffered(body, 200, content_type, [("Cache-Control", "no-store")])

    app.add_route(path, scrape, ["GET"], endpoint="metrics")
    app.wsgi_app = _Measured(app.wsgi_app, metrics)  # type: ignore[method-assign]
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
