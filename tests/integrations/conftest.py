"""Fixtures for the integrations tests: an app with a Database, on every selected backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from microback import App
from microback.db import Database
from microback.testing import database_servers, database_url

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest


@pytest.fixture
def db(app: App, database_url: str) -> Iterator[Database]:
    database = Database(app, database_url)
    yield database
    database.close_all()
