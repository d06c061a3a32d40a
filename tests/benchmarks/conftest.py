"""Fixtures for the TechEmpower verification tests: a filled SQLite file and every app on it.

The implementations live in ``benchmarks/techempower/`` (plain scripts, not a package), so
that directory is put on ``sys.path`` here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

TECHEMPOWER = Path(__file__).resolve().parents[2] / "benchmarks" / "techempower"
sys.path.insert(0, str(TECHEMPOWER))

import setup_db  # noqa: E402
import suite  # noqa: E402

#: The package each implementation needs beyond microback's own dependencies.
PACKAGES = {"flask": "flask", "falcon": "falcon", "bottle": "bottle"}


@pytest.fixture(scope="session")
def bench_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with TechEmpower's tables, filled once for the session."""
    path = tmp_path_factory.mktemp("techempower") / "bench.db"
    setup_db.fill_sqlite(path)
    return path


@pytest.fixture(scope="session")
def apps() -> dict[str, Any]:
    """The implementations built so far in this session, by name (built on first use)."""
    return {}


@pytest.fixture(params=list(suite.FRAMEWORKS))
def framework(request: pytest.FixtureRequest) -> str:
    """Each implementation's name; one not installed is skipped, except under CI=true."""
    name: str = request.param
    package = PACKAGES.get(name)
    if package and importlib.util.find_spec(package) is None:
        problem = f"{package} is not installed (pip install -e '.[bench]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {problem}", pytrace=False)
        pytest.skip(problem)
    return name


@pytest.fixture
def bench_app(framework: str, apps: dict[str, Any], bench_database: Path) -> Any:
    if framework not in apps:
        with pytest.MonkeyPatch.context() as patch:
            # Read when the app is made: microback.db prefers DATABASE_URL to the URL given.
            patch.delenv("DATABASE_URL", raising=False)
            patch.setenv("MICROBACK_SECRET_KEY", "techempower-verification-secret-key-0123")
            apps[framework] = suite.create_app(framework, f"sqlite:///{bench_database}")
    return apps[framework]


@pytest.fixture
def world_table(bench_database: Path):
    """A function returning the ``world`` table now, as ``{id: randomnumber}``."""

    def read() -> dict[int, int]:
        with contextlib.closing(sqlite3.connect(bench_database)) as connection:
            return dict(connection.execute("SELECT id, randomnumber FROM world"))

    return read
