"""OpenTelemetry traces of an app, opt-in: ``pip install 'microback[otel]'``.

``enable_tracing(app)`` wraps the app in OpenTelemetry's WSGI instrumentation (a server span
per request, continuing a trace the client sent in ``traceparent``) and names each request's
span by its route template, as the metrics label it (``GET /notes/<int:note_id>``, never the
raw path). Under that span:

- each database call is a client span named by its operation (``SELECT``, ``INSERT``,
  ``COMMIT``), with the SQL text (its parameters are never recorded);
- each outgoing webhook call is a client span (``POST``), whose ``traceparent`` header goes
  with the request, so the receiver's spans join the trace.

A job enqueued while a span is current stores that span's context with the job, and its run in
``microback worker`` is a span of its own (``job module.function``) in a new trace, *linked*
to the enqueuing request's: one click from the job to the request that caused it, without a
trace that lasts as long as the retries.

Spans go to the ``TracerProvider`` given, or OpenTelemetry's global one (set up with the SDK
and an exporter, for example ``opentelemetry-instrument`` or your own start-up code). Nothing
here is imported until ``enable_tracing`` is called, and the layers it plugs into check for
one attribute when it is not: an app without tracing pays nothing for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .app import App

if TYPE_CHECKING:
    from .jobs.store import Leased

__all__ = ["Tracing", "enable_tracing"]

_INSTALL = "tracing needs OpenTelemetry: pip install 'microback[otel]'"
_OPERATIONS = frozenset(
    (
        *("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "REPLACE", "UPSERT"),
        *("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"),
        *("CREATE", "DROP", "ALTER", "PRAGMA"),
    )
)


class Tracing:
    """The app's tracer and the spans the other layers ask for; ``app.extensions["tracing"]``."""

    def __init__(self, tracer_provider: Any = None) -> None:
        from opentelemetry import propagate, trace

        self._trace = trace
        self._propagate = propagate
        self.tracer = trace.get_tracer("microback", tracer_provider=tracer_provider)
        self.tracer_provider = tracer_provider

    # --- requests ----------------------------------------------------------------------------

    def name_request_span(self, span: Any, environ: dict[str, Any], *_: Any) -> None:
        """Name the request's span ``METHOD /route/<template>`` (the WSGI response hook)."""
        route = environ.get("microback.route")
        if route and span.is_recording():
            span.update_name(f"{environ.get('REQUEST_METHOD', '')} {route}")
            span.set_attribute("http.route", route)

    # --- database calls ----------------------------------------------------------------------

    @contextlib.contextmanager
    def query(self, sql: str, system: str) -> Iterator[None]:
        """A client span around one database call: its operation, system and SQL text."""
        words = sql.lstrip().split(None, 1)
        operation = words[0].upper() if words else ""
        if operation not in _OPERATIONS:
            operation = "SQL"
        attributes = {"db.system": system, "db.operation": operation, "db.statement": sql}
        kind = self._trace.SpanKind.CLIENT
        with self.tracer.start_as_current_span(operation, kind=kind, attributes=attributes):
            yield

    # --- jobs --------------------------------------------------------------------------------

    def current_context(self) -> str | None:
        """The current span's ``traceparent``, to store with a job; ``None`` without a span."""
        carrier: dict[str, str] = {}
        self._propagate.inject(carrier)
        return carrier.get("traceparent")

    def failed(self, span: Any, description: str) -> None:
        """Mark *span* as failed."""
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, description))

    @contextlib.contextmanager
    def job(self, leased: Leased) -> Iterator[Any]:
        """The span of one job run, linked to the context stored when it was enqueued."""
        links = []
        if leased.trace_parent:
            stored = self._propagate.extract({"traceparent": leased.trace_parent})
            context = self._trace.get_current_span(stored).get_span_context()
            if context.is_valid:
                links.append(self._trace.Link(context))
        attributes: dict[str, Any] = {
            "messaging.message.id": leased.job_id,
            "microback.job.name": leased.name,
            "microback.job.attempt": leased.attempt,
        }
        if leased.request_id:
            attributes["microback.request_id"] = leased.request_id
        with self.tracer.start_as_current_span(
            f"job {leased.name}",
            context=self._propagate.extract({}),  # a new trace, not the worker loop's
            kind=self._trace.SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        ) as span:
            yield span

    # --- outgoing calls ----------------------------------------------------------------------

    @contextlib.contextmanager
    def outgoing(self, method: str, url: str, headers: dict[str, str]) -> Iterator[Any]:
        """A client span around one outgoing HTTP call; adds ``traceparent`` to *headers*."""
        attributes = {"http.request.method": method, "url.full": _without_secrets(url)}
        kind = self._trace.SpanKind.CLIENT
        with self.tracer.start_as_current_span(method, kind=kind, attributes=attributes) as span:
            self._propagate.inject(headers)
            yield span


def _without_secrets(url: str) -> str:
    # A URL's user, password or query may be secrets, and traces outlive them.
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "") + parts.path


def enable_tracing(app: App, *, tracer_provider: Any = None) -> Tracing:
    """Trace *app*'s requests, database calls, jobs and outgoing webhook calls (see the module
    docstring). Raises ``RuntimeError`` when OpenTelemetry is not installed."""
    try:
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    except ImportError as exc:
        raise RuntimeError(_INSTALL) from exc
    tracing = Tracing(tracer_provider)
    app.extensions["tracing"] = tracing
    db = app.extensions.get("db")
    if db is not None:
        db.trace_queries(tracing)
    app.wsgi_app = OpenTelemetryMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        response_hook=tracing.name_request_span,
        tracer_provider=tracer_provider,
    )
    return tracing
