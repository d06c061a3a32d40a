"""Migrations and autodiff: the runner on each database, then the ``microback db`` commands.

Every test runs once per backend selected by ``MICROBACK_TEST_DATABASES`` (``database_url``
in conftest.py): SQLite always, PostgreSQL and MariaDB when selected.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import peewee
import pytest

from microback.db import Database
from microback.db.autodiff import compare, render
from microback.db.migrations import MigrationError, MigrationFailed, Migrations
from microback.testing import selected_backends

TRANSACTIONAL = {"sqlite", "postgresql"}  # DDL inside a transaction; not MySQL, not MariaDB


@pytest.fixture
def backend(db: Database) -> str:
    return db.backend


@pytest.fixture
def database(db: Database) -> peewee.Database:
    """The peewee database under ``db``: what migration files receive as ``db``."""
    return db.database


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


def _columns(database: peewee.Database, table: str) -> list[str]:
    return [column.name for column in database.get_columns(table)]


CREATE_NOTE = """\
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

ADD_TITLE = """\
    from peewee import CharField


    def up(migrator, db):
        migrator.migrate(migrator.add_column("note", "title", CharField(default="")))


    def down(migrator, db):
        migrator.migrate(migrator.drop_column("note", "title"))
"""


# --- the runner ---------------------------------------------------------------------------------


def test_migrate_rollback_and_status(database: peewee.Database, tmp_path: Path) -> None:
    migrations = Migrations(database, tmp_path / "migrations")
    _write(migrations.directory, "0001_create_note", CREATE_NOTE)
    _write(migrations.directory, "0002_add_title", ADD_TITLE)

    assert migrations.migrate("1") == ["0001_create_note"]  # a target by number
    assert [m.name for m in migrations.pending()] == ["0002_add_title"]
    reported: list[str] = []
    assert migrations.migrate(report=reported.append) == ["0002_add_title"]
    assert reported == ["0002_add_title"]
    assert _columns(database, "note") == ["id", "text", "title"]
    assert migrations.migrate() == []

    assert migrations.rollback() == ["0002_add_title"]
    assert _columns(database, "note") == ["id", "text"]
    migrations.migrate()
    assert migrations.rollback(through="0001_create_note") == [
        "0002_add_title",
        "0001_create_note",
    ]
    assert "note" not in database.get_tables()
    assert all(m.pending for m in migrations.status())


def test_new_numbers_files_and_its_down_refuses_until_written(
    database: peewee.Database, tmp_path: Path
) -> None:
    migrations = Migrations(database, tmp_path / "migrations")
    first = migrations.new("create notes")
    second = migrations.new("Add note title!")
    assert (first.name, second.name) == ("0001_create_notes.py", "0002_add_note_title.py")
    compile(first.read_text(), str(first), "exec")

    assert migrations.migrate() == ["0001_create_notes", "0002_add_note_title"]
    with pytest.raises(MigrationFailed) as caught:
        migrations.rollback()
    message = str(caught.value)
    assert message.startswith("rolling back migration 0002_add_note_title failed: ")
    assert "NotImplementedError: down() is not written yet" in message
    assert "0002_add_note_title.py:" in message  # the line that raised
    assert "\n" not in message


def test_unknown_target_and_missing_down_change_nothing(
    database: peewee.Database, tmp_path: Path
) -> None:
    migrations = Migrations(database, tmp_path / "migrations")
    _write(migrations.directory, "0001_create_note", CREATE_NOTE.split("\n\n\n    def down")[0])
    with pytest.raises(MigrationError, match="no pending migration '7'; pending migrations: 0001"):
        migrations.migrate("7")
    migrations.migrate()
    with pytest.raises(MigrationError, match="nothing was changed: 0001_create_note does not"):
        migrations.rollback()
    assert not migrations.pending()


def test_a_migration_that_cannot_be_imported_is_named(
    database: peewee.Database, tmp_path: Path
) -> None:
    migrations = Migrations(database, tmp_path / "migrations")
    _write(migrations.directory, "0001_broken", "def up(migrator, db)\n    pass\n")
    with pytest.raises(MigrationError) as caught:
        migrations.migrate()
    assert "cannot load migration 0001_broken: SyntaxError: " in str(caught.value)
    assert "0001_broken.py:1)" in str(caught.value)


FAILS_HALFWAY = """\
    from peewee import CharField


    def up(migrator, db):
        migrator.migrate(migrator.add_column("note", "title", CharField(default="")))
        migrator.migrate(migrator.add_column("no_such_table", "x", CharField(default="")))
"""


def test_a_failed_migration_names_itself_and_leaves_the_schema_and_record(
    backend: str, database: peewee.Database, tmp_path: Path
) -> None:
    migrations = Migrations(database, tmp_path / "migrations")
    _write(migrations.directory, "0001_create_note", CREATE_NOTE)
    _write(migrations.directory, "0002_fails_halfway", FAILS_HALFWAY)
    applied: list[str] = []
    with pytest.raises(MigrationFailed) as caught:
        migrations.migrate(report=applied.append)
    message = str(caught.value)

    assert applied == ["0001_create_note"]  # the one before it stays applied
    assert message.startswith("applying migration 0002_fails_halfway failed: ")
    assert "no_such_table" in message
    assert "0002_fails_halfway.py:6)" in message
    assert "\n" not in message
    assert [m.name for m in migrations.pending()] == ["0002_fails_halfway"]  # not recorded
    if backend in TRANSACTIONAL:
        assert caught.value.undone
        assert message.endswith(
            "it was rolled back, so the schema and its record are as they were"
        )
        assert _columns(database, "note") == ["id", "text"]
    else:
        # MySQL and MariaDB commit each ALTER TABLE at once: the first change stays.
        assert not caught.value.undone
        assert "this database commits each schema change at once" in message
        assert _columns(database, "note") == ["id", "text", "title"]


SLOW_COUNTED = """\
    import time


    def up(migrator, db):
        db.execute_sql("INSERT INTO counter (n) VALUES (1)")
        time.sleep(0.3)
"""


@pytest.mark.parametrize(
    "database_url", [b for b in selected_backends() if b != "sqlite"], indirect=True
)
def test_concurrent_migrates_apply_each_migration_once(
    database: peewee.Database, tmp_path: Path
) -> None:
    """Two hosts deploying at once: the second waits on the lock, then finds nothing pending."""
    database.execute_sql("CREATE TABLE counter (n INTEGER)")
    directory = tmp_path / "migrations"
    _write(directory, "0001_counted", SLOW_COUNTED)
    results: list[list[str] | BaseException] = []

    def run() -> None:
        try:
            results.append(Migrations(database, directory).migrate())
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)
        finally:
            database.close()  # this thread's connection

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not [r for r in results if isinstance(r, BaseException)]
    assert sorted(results, key=len) == [[], ["0001_counted"]]  # type: ignore[arg-type]
    assert database.execute_sql("SELECT COUNT(*) FROM counter").fetchone()[0] == 1


# --- autodiff -----------------------------------------------------------------------------------


def _models(database: peewee.Database, **extra: peewee.Field) -> dict[str, type[peewee.Model]]:
    """``author`` and ``book`` models, with *extra* fields on ``author``."""

    class Base(peewee.Model):
        class Meta:
            database = None

    Base._meta.database = database
    author = type("Author", (Base,), {"name": peewee.CharField(), **extra, "__module__": __name__})
    book = type(
        "Book",
        (Base,),
        {
            "author": peewee.ForeignKeyField(author),
            "title": peewee.TextField(),
            "__module__": __name__,
        },
    )
    return {"author": author, "book": book}


CASES = {
    # name: (fields on author before, after; tables before, after; the change it must see)
    "add table": ({}, {}, ["author"], ["author", "book"], "create table book"),
    "drop table": ({}, {}, ["author", "book"], ["author"], "drop table book (its rows are lost)"),
    "add column": (
        {},
        {"bio": peewee.TextField(null=True)},
        ["author"],
        ["author"],
        "add column author.bio",
    ),
    "drop column": (
        {"bio": peewee.TextField(null=True)},
        {},
        ["author"],
        ["author"],
        "drop column author.bio",
    ),
    "add index": (
        {"born": peewee.IntegerField(null=True)},
        {"born": peewee.IntegerField(null=True, index=True)},
        ["author"],
        ["author"],
        "add index author (born)",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_autodiff_writes_a_migration_that_brings_the_schema_to_the_models(
    case: str, database: peewee.Database, tmp_path: Path
) -> None:
    before_fields, after_fields, before_tables, after_tables, expected = CASES[case]
    before = _models(database, **before_fields)
    database.create_tables([before[t] for t in before_tables])
    assert not compare(database, [before[t] for t in before_tables])  # no false positives

    after = [_models(database, **after_fields)[t] for t in after_tables]
    changes = compare(database, after)
    assert changes.describe() == [expected]
    migrations = Migrations(database, tmp_path / "migrations")
    path = migrations.new("sync", render(changes, database, "Sync."))
    text = path.read_text()
    assert "import *" not in text
    compile(text, str(path), "exec")

    assert migrations.migrate() == ["0001_sync"]
    assert not compare(database, after)
    migrations.rollback()
    if case == "drop column":
        # As in peewee's template: down() cannot bring back a dropped column, and says so.
        assert "# TODO: author.bio: dropped column cannot be restored by down()" in text
    else:
        assert not compare(database, [before[t] for t in before_tables])


def test_autodiff_keeps_the_history_and_many_to_many_tables(
    database: peewee.Database, tmp_path: Path
) -> None:
    class Tag(peewee.Model):
        class Meta:
            database = None

    Tag._meta.database = database
    models = _models(database)
    models["book"]._meta.add_field("tags", peewee.ManyToManyField(Tag))
    through = models["book"].tags.get_through_model()
    database.create_tables([models["author"], models["book"], Tag, through])
    migrations = Migrations(database, tmp_path / "migrations")
    _write(migrations.directory, "0001_nothing", "def up(migrator, db):\n    pass\n")
    migrations.migrate()
    assert migrations.table_name in database.get_tables()

    assert not compare(database, [models["author"], models["book"], Tag])


# --- the commands -------------------------------------------------------------------------------

# Until microback/cli.py hands ``db`` to microback.db.cli, the same call is made directly.
_DIRECT = (
    "import sys\n"
    "from microback.cli import CommandError, load\n"
    "from microback.db.cli import main\n"
    "try:\n"
    "    sys.exit(main(sys.argv[1:], load))\n"
    "except CommandError as exc:\n"
    "    print(f'microback: error: {exc}', file=sys.stderr)\n"
    "    sys.exit(exc.status)\n"
)


def _db_command() -> list[str]:
    from microback.cli import build_parser

    (commands,) = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    if "db" in commands.choices:
        return [sys.executable, "-m", "microback", "db"]
    return [sys.executable, "-c", _DIRECT]


DB_COMMAND = _db_command()

APP = """\
from microback import App
from microback.db import Database, fields

app = App(secret_key="a-test-secret-key-that-is-long-enough")
db = Database(app, "sqlite:///not-used.db")  # DATABASE_URL replaces it


class Note(db.Model):
    text = fields.TextField()
"""


class Project:
    """An app in ``tmp/proj/app.py`` and the ``microback db`` command run from ``tmp``."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.app_file = root / "proj" / "app.py"
        self.app_file.parent.mkdir()
        self.app_file.write_text(APP)
        self.migrations = root / "proj" / "migrations"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.env.pop("MICROBACK_APP", None)

    def add_to_model(self, line: str) -> None:
        self.app_file.write_text(self.app_file.read_text() + f"    {line}\n")

    def run(self, *args: str, status: int = 0, env: dict[str, str] | None = None) -> str:
        """Run ``microback db ARGS``; check its exit status; return its stdout."""
        done = subprocess.run(
            [*DB_COMMAND, *args],
            cwd=self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == status, done.stdout + done.stderr
        self.stderr = done.stderr
        if not status:
            assert done.stderr == "", done.stderr
        return done.stdout


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Project:
    return Project(tmp_path, database_url)


def test_new_migrate_status_rollback_through_the_command(
    project: Project, database: peewee.Database
) -> None:
    target = "proj/app.py:app"
    out = project.run("new", "create_note", target, "--auto")
    assert out.splitlines() == [
        "wrote proj/migrations/0001_create_note.py:",
        "  create table note",
        "read it, then apply it with 'microback db migrate'",
    ]
    out = project.run("status", target, "--check", status=1)  # --check: 1 when one is pending
    assert "[ ] 0001_create_note  pending" in out.splitlines()
    assert out.splitlines()[-1] == "1 pending: apply with 'microback db migrate'"

    assert project.run("migrate", target) == "applied 0001_create_note\n"
    out = project.run("status", "--app", target)
    assert out.splitlines()[2].startswith("[x] 0001_create_note  applied 20")
    assert out.splitlines()[-1] == "the schema matches the models"

    assert project.run("status", target, "--check").splitlines()[-1] == (
        "the schema matches the models"
    )
    project.add_to_model("title = fields.CharField(null=True)")
    out = project.run("status", target)
    assert "the models differ from the schema (add column note.title)" in out
    assert out == project.run("status", target, "--check", status=1)  # --check: 1 on drift too
    project.run("new", "add_note_title", target, "--auto")
    assert project.run("migrate", env={**project.env, "MICROBACK_APP": target}) == (
        "applied 0002_add_note_title\n"
    )
    assert _columns(database, "note") == ["id", "text", "title"]
    assert project.run("migrate", target).startswith("nothing to apply")

    assert project.run("rollback", target) == "rolled back 0002_add_note_title\n"
    assert _columns(database, "note") == ["id", "text"]
    assert project.run("rollback", target, "--through", "1") == "rolled back 0001_create_note\n"
    assert "note" not in database.get_tables()
    assert project.run("rollback", target) == "nothing to roll back: no migration is applied\n"
    assert sorted(p.name for p in project.migrations.iterdir()) == [
        "0001_create_note.py",
        "0002_add_note_title.py",
    ]


def test_a_failed_migration_is_one_line_and_exit_1(
    project: Project, backend: str, database: peewee.Database
) -> None:
    _write(project.migrations, "0001_create_note", CREATE_NOTE)
    _write(project.migrations, "0002_fails_halfway", FAILS_HALFWAY)
    out = project.run("migrate", "proj/app.py:app", status=1)

    assert out == "applied 0001_create_note\n"
    (line,) = project.stderr.splitlines()
    assert line.startswith("microback: error: applying migration 0002_fails_halfway failed: ")
    assert "(proj/migrations/0002_fails_halfway.py:6)" in line
    status = project.run("status", "proj/app.py:app")
    assert "[ ] 0002_fails_halfway  pending" in status  # no record either way
    if backend in TRANSACTIONAL:
        assert _columns(database, "note") == ["id", "text"]
    else:
        assert _columns(database, "note") == ["id", "text", "title"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the same on each backend
def test_create_tables_then_record_the_migrations_as_applied(
    project: Project, database: peewee.Database
) -> None:
    _write(project.migrations, "0001_create_note", CREATE_NOTE)
    out = project.run("create-tables", "proj/app.py:app")
    assert out.splitlines() == [
        "created table note",
        "1 migration(s) are pending: if these tables already have what they make, record "
        "them with 'microback db migrate --fake'",
    ]
    assert project.run("create-tables", "proj/app.py:app") == (
        "every model's table exists; nothing created\n"
    )
    out = project.run("migrate", "proj/app.py:app", "--fake")
    assert out == "recorded as applied 0001_create_note\n"
    assert "the schema matches the models" in project.run("status", "proj/app.py:app")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_command_errors_are_one_line(project: Project) -> None:
    project.run("status", status=2)
    assert project.stderr == (
        "microback: error: no app given: name it as TARGET ('module:app' or "
        "'path/to/file.py:app'), with --app, or in MICROBACK_APP\n"
    )
    (project.root / "bare.py").write_text("from microback import App\n\napp = App()\n")
    project.run("migrate", "bare.py:app", status=2)
    assert project.stderr.endswith(
        "microback: error: bare.py:app has no database: create one with Database(app, url) "
        "from microback.db\n"
    )
    (project.root / "nomodels.py").write_text(APP.split("\n\nclass")[0])
    project.run("new", "sync", "nomodels.py:app", "--auto", status=2)
    assert project.stderr == (
        "microback: error: nomodels.py:app defines no models on db.Model; import the module "
        "that defines them from the app's module, or --auto would drop every table\n"
    )
    project.run("migrate", "missing.py:app", status=2)
    assert project.stderr.startswith("microback: error: no such file: 'missing.py'")
    out = project.run("new", "add_index", "proj/app.py:app", "-d", "elsewhere")
    assert out == "wrote elsewhere/0001_add_index.py\n"


def _stamp() -> str:
    return "a value computed in Python"


def test_autodiff_writes_no_todo_for_defaults_computed_in_python(
    app, db: Database, tmp_path: Path
) -> None:
    # microback's own tables (users, tokens, sessions, sign-in counters) have such defaults.
    from microback.security import Auth

    Auth(app, db)

    class Memo(db.Model):
        created = peewee.DateTimeField(default=_stamp)
        label = peewee.CharField(default=_stamp, null=True)

    database = db.database
    changes = compare(database, db.models)
    text = render(changes, database, "Create.")
    assert "TODO" not in text, text
    assert " at 0x" not in text
    assert max(len(line) for line in text.splitlines()) <= 99  # as ruff would have it
    migrations = Migrations(database, tmp_path / "migrations")
    migrations.new("create", text)
    migrations.migrate()
    assert not compare(database, db.models)

    # A nullable column added later: new rows get the default from the model; nothing to do.
    Memo._meta.add_field("note", peewee.TextField(null=True, default=_stamp))
    assert "TODO" not in render(compare(database, db.models), database, "Add.")


def test_autodiff_keeps_microbacks_datetime_field_for_the_migration(
    db: Database, tmp_path: Path
) -> None:
    # microback's DateTimeField keeps microseconds on MariaDB (DATETIME(6)); peewee's namesake
    # imported after it in the migration would shadow it and create DATETIME there.
    from microback.db.fields import DateTimeField

    class Event(db.Model):
        at = DateTimeField()
        day = peewee.DateField()

    database = db.database
    text = render(compare(database, db.models), database, "Create.")
    assert "from microback.db.fields import DateTimeField" in text, text
    peewee_import = next(line for line in text.splitlines() if line.startswith("from peewee"))
    assert "DateTimeField" not in peewee_import, text
    migrations = Migrations(database, tmp_path / "migrations")
    migrations.new("create", text)
    migrations.migrate()
    assert not compare(database, db.models)
    stamp = datetime.datetime(2026, 12, 2, 6, 0, 0, 123456, tzinfo=datetime.timezone.utc)
    Event.create(at=stamp, day=stamp.date())
    assert Event.get().at == stamp  # microseconds kept on every backend


def test_autodiff_says_what_to_do_when_existing_rows_need_a_computed_default(
    db: Database,
) -> None:
    class Memo(db.Model):
        text = peewee.TextField()

    db.create_tables()
    Memo._meta.add_field("created", peewee.DateTimeField(default=_stamp))
    database = db.database
    texts = {render(compare(database, db.models), database, "Add.") for _ in range(2)}
    (text,) = texts  # the same text on every run: no address of a function in it
    todos = [line for line in text.splitlines() if line.startswith("# TODO")]
    assert todos == [
        "# TODO: memo.created: the rows already in the table need a value, and its default "
        f"({__name__}._stamp) cannot be copied into a migration: give DateTimeField(...) in "
        "up() a fixed default=, or null=True"
    ]
