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
