"""Fixtures for the job tests: an app with a Database and Jobs, on every selected backend."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from microback import App
from microback.db import Database, fields
from microback.jobs import Jobs
from microback.testing import TestClient, database_servers, database_url

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest


@pytest.fixture
def db(app: App, database_url: str) -> Iterator[Database]:
    database = Database(app, database_url)
    yield database
    database.close_all()


@pytest.fixture
def jobs(app: App, db: Database) -> Jobs:
    return Jobs(app, db, backoff=0.01, max_backoff=0.05)


@pytest.fixture
def effects(db: Database, jobs: Jobs) -> SimpleNamespace:
    """A table where jobs record what they did, one row per job id at most."""

    class Effect(db.Model):
        job_id = fields.CharField(max_length=36, unique=True)
        value = fields.TextField()

    db.create_tables()
    return SimpleNamespace(Effect=Effect)


@pytest.fixture
def client(app: App) -> TestClient:
    return TestClient(app)
