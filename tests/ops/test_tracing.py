"""OpenTelemetry tracing (``enable_tracing``): spans caught by the SDK's in-memory exporter,
through real WSGI requests, a real SQLite database, real jobs and a real HTTP receiver."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from microback import App, enable_tracing
from microback.db import Database, fields
from microback.integrations import WebhookSender
from microback.jobs import Job, Jobs
from microback.testing import TestClient


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    made = TracerProvider()
    made.add_span_processor(SimpleSpanProcessor(exporter))
    yield made
    made.shutdown()


def _by_name(exporter: InMemorySpanExporter) -> dict[str, list]:
    found: dict[str, list] = {}
    for span in exporter.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


def test_a_request_span_is_named_by_its_route_and_holds_its_queries(
    app: App, db: Database, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    class Note(db.Model):
        text = fields.TextField()

    db.create_tables()
    enable_tracing(app, tracer_provider=provider)

    @app.get("/notes/<int:note_id>")
    def note(request, note_id):  # type: ignore[no-untyped-def]
        return {"count": Note.select().where(Note.id == note_id).count()}

    TestClient(app).get("/notes/7", headers={"traceparent": _PARENT})
    spans = _by_name(exporter)
    [server] = spans["GET /notes/<int:note_id>"]
    assert server.kind == SpanKind.SERVER
    assert server.attributes["http.route"] == "/notes/<int:note_id>"
    assert format(server.context.trace_id, "032x") == _PARENT.split("-")[1]  # continued
    [query] = spans["SELECT"]
    assert query.kind == SpanKind.CLIENT
    assert query.parent.span_id == server.context.span_id
    assert query.attributes["db.system"] == db.backend
    assert "note" in query.attributes["db.statement"]
    assert "7" not in query.attributes["db.statement"]  # parameters are not recorded
    assert not any("/notes/7" in name for name in spans)


def test_tracing_enabled_before_the_database_still_traces_its_queries(
    app: App, provider: TracerProvider, exporter: InMemorySpanExporter, tmp_path
) -> None:
    enable_tracing(app, tracer_provider=provider)
    db = Database(app, f"sqlite:///{tmp_path}/later.db")
    try:
        db.database.execute_sql("SELECT 1")
    finally:
        db.close_all()
    assert "SELECT" in _by_name(exporter)


def test_a_job_span_links_to_the_request_that_enqueued_it(
    app: App, db: Database, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    jobs = Jobs(app, db, backoff=0.01, max_backoff=0.02)
    enable_tracing(app, tracer_provider=provider)

    @jobs.task
    def receipt(job: Job, order: int) -> None:
        pass

    @jobs.task(max_attempts=1)
    def broken(job: Job) -> None:
        raise RuntimeError("no printer")

    @app.post("/orders/<int:order>")
    def order(request, order):  # type: ignore[no-untyped-def]
        receipt.enqueue(order)
        broken.enqueue()
        return {"ok": True}, 201

    db.create_tables()
    TestClient(app).post("/orders/5", status=201)
    [server] = _by_name(exporter)["POST /orders/<int:order>"]
    assert jobs.run_pending() == 2
    spans = _by_name(exporter)
    [ran] = spans[f"job {receipt.name}"]
    assert ran.kind == SpanKind.CONSUMER
    assert ran.parent is None  # a trace of its own...
    assert [link.context.span_id for link in ran.links] == [server.context.span_id]  # ...linked
    assert ran.links[0].context.trace_id == server.context.trace_id
    assert ran.attributes["microback.job.attempt"] == 1
    [failed] = spans[f"job {broken.name}"]
    assert failed.status.status_code == StatusCode.ERROR
    # The job's own queries are its span's children.
    assert any(
        span.parent is not None and span.parent.span_id == ran.context.span_id
        for span in exporter.get_finished_spans()
        if span.kind == SpanKind.CLIENT
    )


class _Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(dict(self.headers.items()))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_an_outgoing_webhook_call_is_a_span_whose_context_goes_with_it(
    app: App, db: Database, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        sender = WebhookSender(Jobs(app, db), timeout=5.0, allow_internal_addresses=True)
        enable_tracing(app, tracer_provider=provider)
        db.create_tables()
        url = f"http://127.0.0.1:{server.server_port}/hooks?token=secret"
        sender.send(sender.add_endpoint(url), "order.paid", {"id": 1})
        assert sender.jobs.run_pending() == 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    [call] = _by_name(exporter)["POST"]
    assert call.kind == SpanKind.CLIENT
    assert call.attributes["http.response.status_code"] == 204
    assert call.attributes["url.full"] == f"http://127.0.0.1:{server.server_port}/hooks"
    [job] = [s for s in exporter.get_finished_spans() if s.name.startswith("job ")]
    assert call.parent.span_id == job.context.span_id
    [headers] = server.received  # type: ignore[attr-defined]
    trace_id, span_id = headers["traceparent"].split("-")[1:3]
    assert (trace_id, span_id) == (
        format(call.context.trace_id, "032x"),
        format(call.context.span_id, "016x"),
    )


def test_without_tracing_nothing_of_opentelemetry_is_imported() -> None:
    # redis-py 7 imports OpenTelemetry's SDK by itself when it is installed (for its own
    # observability), and huey imports redis when it can: keep redis out, microback is checked.
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "import microback, microback.db, microback.jobs, microback.integrations\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_without_opentelemetry_installed_the_error_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if it were not installed\n"
        "from microback import App, enable_tracing\n"
        "try:\n"
        "    enable_tracing(App(secret_key='x' * 32))\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "tracing needs OpenTelemetry: pip install 'microback[otel]'"


_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
