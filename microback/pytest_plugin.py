"""The pytest plugin microback installs: ``client`` and ``run_jobs`` fixtures for the app.

Define an ``app`` fixture in your ``conftest.py`` and ``client`` is a
:class:`~microback.testing.TestClient` for it. webtest is imported only when the fixture is
used, so projects that merely have microback installed are not affected. ``run_jobs()`` runs
the app's queued background jobs now (:func:`microback.testing.run_jobs`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def client(app: Any) -> Any:
    """Give a TestClient for the ``app`` fixture, checked against the WSGI spec."""
    from .testing import TestClient

    return TestClient(app)


@pytest.fixture
def run_jobs(app: Any) -> Callable[..., int]:
    """Give a function that runs the ``app`` fixture's queued jobs now (see
    :func:`microback.testing.run_jobs`)."""
    from .testing import run_jobs as run

    return lambda **options: run(app, **options)
