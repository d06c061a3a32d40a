"""The pytest plugin microback installs: a ``client`` fixture for the app under test.

Define an ``app`` fixture in your ``conftest.py`` and ``client`` is a
:class:`~microback.testing.TestClient` for it. webtest is imported only when the fixture is
used, so projects that merely have microback installed are not affected.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def client(app: Any) -> Any:
    """Give a TestClient for the ``app`` fixture, checked against the WSGI spec."""
    from .testing import TestClient

    return TestClient(app)
