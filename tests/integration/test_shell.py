"""``microback shell TARGET``, driven through its standard input as a user would type."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from serving import child_env, microback_command, write_module

from microback.testing import TestDatabases, database_servers, selected_backends

__all__ = ["database_servers"]  # a fixture, imported for pytest

APP = """
    from microback import App
    from microback.db import Database, fields
    from microback.security import Auth

    app = App(secret_key="shell-test-secret-0123456789abcdef0123")
    db = Database(app, "sqlite:///shell.db")
    auth = Auth(app, db, password_rounds=10)


    class Note(db.Model):
        owner = fields.ForeignKeyField(auth.User, backref="notes")
        text = fields.TextField()


    def shout(text):
        return text.upper()
"""


def shell(
    cwd: Path, typed: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        microback_command("shell", *args),
        cwd=cwd,
        env={**child_env(), **(env or {})},
        input=typed,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(params=selected_backends())
def project(request: pytest.FixtureRequest, tmp_path: Path, database_servers: TestDatabases):
    write_module(tmp_path, "notes.py", APP)
    env = {}
    if request.param != "sqlite":
        env["DATABASE_URL"] = database_servers.url(request.param)
    created = shell(tmp_path, "db.create_tables()\n", "--plain", "notes:app", env=env)
    assert created.returncode == 0, created.stderr
    yield tmp_path, env
    if request.param != "sqlite":
        database_servers.reset(request.param)


def test_the_app_database_and_models_are_bound_and_connected(project) -> None:
    cwd, env = project
    typed = (
        "print('connected:', not db.database.is_closed())\n"
        "ada = User.create(email='ada@example.org')\n"
        "Note.create(owner=ada, text='from the shell')\n"
        "print('notes:', [n.text for n in Note.select()])\n"
        "print('app:', type(app).__name__, sorted(r.path for r in app.routes))\n"
        "print('models:', sorted(m.__name__ for m in (Note, User)))\n"
    )

    result = shell(cwd, typed, "--plain", "notes:app", env=env)

    assert result.returncode == 0, result.stderr
    assert "connected: True" in result.stdout
    assert "notes: ['from the shell']" in result.stdout
    assert "app: App []" in result.stdout
    assert "models: ['Note', 'User']" in result.stdout
    assert "microback shell for notes:app" in result.stderr
    assert "Bound: app, db, " in result.stderr
    # What the shell wrote is committed: a second shell (another process) sees it.
    again = shell(cwd, "print('count:', Note.select().count())\n", "--plain", "notes:app", env=env)
    assert "count: 1" in again.stdout, again.stderr


def test_ipython_is_the_prompt_when_installed(tmp_path: Path) -> None:
    write_module(tmp_path, "notes.py", APP)
    typed = "db.create_tables()\nNote\nprint('users:', User.select().count())\n"

    result = shell(tmp_path, typed, "notes:app")

    assert result.returncode == 0, result.stderr
    assert "In [1]:" in result.stdout
    assert "Out[2]: <Model: Note>" in result.stdout
    assert "users: 0" in result.stdout


def test_a_file_target_and_an_error_at_the_prompt(tmp_path: Path) -> None:
    write_module(tmp_path, "notes.py", APP)
    typed = "1 / 0\nprint('still here:', shout('hi'))\n"

    result = shell(tmp_path, typed, "--plain", "notes.py:app")

    assert result.returncode == 0, result.stderr
    assert "ZeroDivisionError" in result.stderr  # shown, and the prompt goes on
    assert "NameError" in result.stderr  # the module's other names are not bound
    assert "still here" not in result.stdout


def test_an_app_without_a_database_gets_app_only(tmp_path: Path) -> None:
    write_module(tmp_path, "plain.py", "from microback import App\n\napp = App()\n")

    result = shell(
        tmp_path,
        "print(sorted(k for k in dir() if not k.startswith('_')))\n",
        "--plain",
        "plain:app",
    )

    assert result.returncode == 0, result.stderr
    assert "['app']" in result.stdout


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    write_module(tmp_path, "notes.py", APP)
    # The app's own start-up check refuses it first, as serve would.
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}

    result = shell(tmp_path, "", "--plain", "notes:app", env=env)

    assert result.returncode != 0
    assert result.stderr.startswith("microback: error: ")
    assert "Traceback" not in result.stderr


def test_a_bad_target_is_reported_as_serve_reports_it(tmp_path: Path) -> None:
    result = shell(tmp_path, "", "nowhere:app")

    assert result.returncode == 2
    assert "cannot find module 'nowhere'" in result.stderr
