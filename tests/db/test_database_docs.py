"""The programs in docs/database.md, run again on PostgreSQL and MariaDB.

tests/test_docs.py runs every page's programs and replays their sessions on SQLite; here the
same programs run with ``DATABASE_URL`` pointing at this run's database on each selected
server, so the page's claims hold on all three databases.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import test_docs  # tests/test_docs.py: the page parser and the session replayer

from microback.db import Database
from microback.testing import TestClient, TestDatabases, selected_backends

PROGRAMS = [p for p in test_docs.PROGRAMS if p.block.page.name == "database.md"]
SERVERS = [backend for backend in selected_backends() if backend != "sqlite"]


@pytest.fixture(params=SERVERS)
def server_url(
    request: pytest.FixtureRequest, database_servers: TestDatabases, tmp_path, monkeypatch
) -> Iterator[str]:
    url = database_servers.url(request.param)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    database_servers.reset(request.param)


def test_the_page_has_programs():
    assert len(PROGRAMS) >= 4


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.block.where for p in PROGRAMS])
def test_program_on_a_server(program, server_url):
    module = test_docs._run_program(program.block)
    databases = [v for v in vars(module).values() if isinstance(v, Database)]
    try:
        assert [db.url for db in databases] == [server_url] * len(databases)
        failures = []
        for session in program.sessions:
            for exchange in test_docs._parse_session(session):
                errors = test_docs._replay(TestClient(module.app), exchange)
                if errors:
                    failures.append(f"line {exchange.line}: " + "; ".join(errors))
        assert not failures, "\n".join(failures)
    finally:
        for db in databases:
            db.close_all()
