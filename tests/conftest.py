"""Fixtures shared by the unit tests: every app is reached through the WSGI validator."""

from __future__ import annotations

import pytest

from microback import App
from microback.testing import TestClient


@pytest.fixture
def app() -> App:
    return App(secret_key="test-secret-key-that-is-long-enough")


@pytest.fixture
def client(app: App) -> TestClient:
    # TestClient wraps the app in wsgiref.validate.validator: a PEP 3333 violation fails here.
    return TestClient(app)


# Suites that start real `microback serve` / `microback worker` processes and wait on them for
# seconds: marked `slow`, so the README's test command stays under five minutes. `.ci/run`
# runs them right after it (`-m slow`), so CI still runs every test.
SLOW_MODULES = frozenset(
    {
        "test_blocked_loop.py",
        "test_drain.py",
        "test_idempotency_workers.py",
        "test_login_throttling.py",
        "test_logout_across_processes.py",
        "test_metrics_workers.py",
        "test_pending_migrations.py",
        "test_readiness.py",
        "test_reload.py",
        "test_shutdown.py",
        "test_slow_clients.py",
        "test_sqlite_writers.py",
        "test_tls.py",
        "test_webhooks_served.py",
        "test_worker.py",
        "test_workers.py",
    }
)


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection looks at the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
