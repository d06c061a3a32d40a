"""The metrics route: route templates as labels, status classes, not public by default."""

from __future__ import annotations

from microback import App, enable_metrics
from microback.testing import TestClient


def _scrape(client: TestClient) -> str:
    return str(client.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}).text)


def test_requests_are_counted_by_route_template_method_and_status_class(app: App) -> None:
    enable_metrics(app)

    @app.get("/notes/<int:note_id>")
    def note(request, note_id):  # type: ignore[no-untyped-def]
        return {"id": note_id}

    client = TestClient(app)
    for note_id in (1, 2, 3):
        client.get(f"/notes/{note_id}")
    client.get("/nowhere/42", status=404)
    text = _scrape(client)
    assert (
        'microback_requests_total{method="GET",route="/notes/<int:note_id>",status="2xx"} 3.0'
        in text
    )
    assert 'microback_requests_total{method="GET",route="unmatched",status="4xx"} 1.0' in text
    assert 'microback_request_duration_seconds_count{route="/notes/<int:note_id>"} 3.0' in text
    assert "/notes/1" not in text and "/nowhere" not in text


def test_the_route_is_not_public_by_default(app: App) -> None:
    enable_metrics(app)
    client = TestClient(app)
    client.get("/metrics", extra_environ={"REMOTE_ADDR": "203.0.113.9"}, status=404)
    client.get("/metrics", extra_environ={"REMOTE_ADDR": "::1"}, status=200)


def test_allowed_networks_are_configurable(app: App) -> None:
    enable_metrics(app, path="/internal/metrics", allow_from=["10.0.0.0/8"])
    client = TestClient(app)
    client.get("/internal/metrics", extra_environ={"REMOTE_ADDR": "10.1.2.3"}, status=200)
    client.get("/internal/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}, status=404)
