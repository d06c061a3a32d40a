"""Fixtures for the database tests: a fresh database per test, on every selected backend.

``database_url`` is parametrized over MICROBACK_TEST_DATABASES (default: sqlite), so each
test that uses it runs once per backend, named in its id: ``test_x[postgresql]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from microback import App
from microback.db import Database, fields, private
from microback.testing import TestClient, database_servers, database_url

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest


@pytest.fixture
def make_db(app: App, database_url: str) -> Iterator:
    """Make a Database on the test's app and URL; every one made is closed after the test."""
    made: list[Database] = []

    def make(url: str | None = None, **options) -> Database:
        db = Database(app, url or database_url, **options)
        made.append(db)
        return db

    yield make
    for db in made:
        db.close_all()


@pytest.fixture
def db(make_db) -> Database:
    return make_db()


@pytest.fixture
def models(db: Database) -> SimpleNamespace:
    """A user who owns notes: a unique name, a private hash, a required foreign key."""

    class User(db.Model):
        name = fields.CharField(max_length=80, unique=True)
        password_hash = private(fields.CharField(max_length=200, default="not-a-real-hash"))

    class Note(db.Model):
        owner = fields.ForeignKeyField(User, backref="notes")
        text = fields.TextField()

    db.create_tables()
    return SimpleNamespace(User=User, Note=Note)


@pytest.fixture
def client(app: App) -> TestClient:
    return TestClient(app)
