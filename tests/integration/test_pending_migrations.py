"""``microback serve`` and migrations not applied: one warning line, or a refusal to start
with ``require_migrations``; ``check --deploy`` reports both (issue 12, item 7).

On every selected database: the app's database is this run's test database.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from serving import StartServer, run_microback, stderr_lines, write_module

from microback.testing import database_servers, database_url

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest

APP = """
    from microback import App
    from microback.db import Database, fields

    app = App({settings})
    db = Database(app, {url!r})


    class Note(db.Model):
        text = fields.TextField()
        title = fields.TextField(default="")


    @app.get("/notes")
    def notes(request):
        return {{"notes": [note.to_dict() for note in Note.select()]}}
"""

CREATE_NOTE = """
    from peewee import Model, TextField


    def up(migrator, db):
        class Note(Model):
            text = TextField()

            class Meta:
                database = db
                table_name = "note"

        db.create_tables([Note])


    def down(migrator, db):
        migrator.migrate(migrator.drop_table("note"))
"""

ADD_TITLE = """
    from peewee import TextField


    def up(migrator, db):
        migrator.migrate(migrator.add_column("note", "title", TextField(default="")))


    def down(migrator, db):
        migrator.migrate(migrator.drop_column("note", "title"))
"""

WARNING = re.compile(r"1 migration\(s\) not applied to the database \(0002_add_title\)")


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Path:
    """An app whose first migration is applied and whose second is not."""
    write_module(tmp_path, "shop.py", APP.format(settings="", url=database_url))
    write_module(tmp_path, "migrations/0001_create_note.py", CREATE_NOTE)
    write_module(tmp_path, "migrations/0002_add_title.py", ADD_TITLE)
    done = run_microback("db", "migrate", "shop:app", "--to", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path


def _require(project: Path, database_url: str) -> None:
    write_module(
        project, "shop.py", APP.format(settings="require_migrations=True", url=database_url)
    )


@pytest.mark.parametrize("workers", [(), ("--workers", "2")])
def test_serve_warns_once_naming_the_migrations_not_applied(
    project: Path, start_server: StartServer, workers: tuple[str, ...]
) -> None:
    server = start_server("shop:app", *workers)
    server.wait_for_line(WARNING)
    server.wait_for_line(r"listening on")
    (line,) = [line for line in server.lines if WARNING.search(line)]
    assert line.endswith(
        "requests that need them will fail; apply them with 'microback db migrate' "
        "(MICROBACK_REQUIRE_MIGRATIONS=true refuses to start instead)"
    )


def test_serve_refuses_to_start_with_require_migrations(project: Path, database_url: str) -> None:
    _require(project, database_url)
    for workers in ((), ("--workers", "2")):
        done = run_microback("serve", "--port", "0", *workers, "shop:app", cwd=project)
        assert done.returncode != 0
        (error,) = [line for line in stderr_lines(done) if "microback: error:" in line]
        assert WARNING.search(error), error
        assert "(require_migrations is on, so the server did not start)" in error


def test_serve_says_nothing_once_the_migrations_are_applied(
    project: Path, database_url: str, start_server: StartServer
) -> None:
    _require(project, database_url)
    assert run_microback("db", "migrate", "shop:app", cwd=project).returncode == 0
    server = start_server("shop:app")
    assert "not applied" not in server.log


def test_check_deploy_reports_migrations_not_applied_and_the_setting(
    project: Path, database_url: str
) -> None:
    done = run_microback("check", "--deploy", "shop:app", cwd=project)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert (
        "migrations: 1 migration(s) not applied to the database (0002_add_title): apply them "
        "with 'microback db migrate' before serving"
    ) in lines
    assert any(line.startswith("require_migrations: ") for line in lines)

    _require(project, database_url)
    assert run_microback("db", "migrate", "shop:app", cwd=project).returncode == 0
    done = run_microback("check", "--deploy", "shop:app", cwd=project)
    assert not [line for line in done.stdout.splitlines() if "migration" in line], done.stdout
