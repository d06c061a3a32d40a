"""Fixtures shared by the tests: every app is reached through the WSGI validator."""

from __future__ import annotations

from pathlib import Path

import pytest

# The fixtures of the tests that start `microback serve` (tests/server/, tests/integration/).
from rate_windows import fresh_rate_window  # noqa: F401  (imported for pytest)
from serving import http_server, start_server, webapp  # noqa: F401  (imported for pytest)

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
# runs them right after it (`-m slow`), so CI still runs every test. Paths under tests/.
SLOW_MODULES = frozenset(
    {
        "integration/test_drain.py",
        "integration/test_idempotency_workers.py",
        "integration/test_job_request_ids.py",
        "integration/test_killed_mid_request.py",
        "integration/test_login_throttling.py",
        "integration/test_logout_across_processes.py",
        "integration/test_metrics_workers.py",
        "integration/test_new_project_installed.py",
        "integration/test_pending_migrations.py",
        "integration/test_pool_metrics.py",
        "integration/test_readiness.py",
        "integration/test_reload.py",
        "integration/test_shell.py",
        "integration/test_sqlite_writers.py",
        "integration/test_tls.py",
        "integration/test_webhooks_served.py",
        "integration/test_workers.py",
        "jobs/test_worker.py",
        "server/test_blocked.py",
        "server/test_server_stop.py",
        "server/test_slow.py",
        "server/test_waiting.py",
        # Not multi-process, but it runs flake8 and pycodestyle over the whole tree.
        "test_setup_cfg.py",
    }
)
TESTS = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection looks at the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(TESTS).as_posix() in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
