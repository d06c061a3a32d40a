"""Fixtures of the operations tests: the database ones of tests/db."""

from microback.testing import database_servers, database_url  # noqa: F401
from tests.db.conftest import db, make_db  # noqa: F401  (fixtures, imported for pytest)
