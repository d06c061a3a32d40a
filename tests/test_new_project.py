"""``microback new``: names it refuses, the files it writes, and the API-only project's own
tests, run from the working tree. tests/integration/test_new_project_installed.py installs
each kind of project in a fresh virtual environment and serves it (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from microback.cli import main
from microback.new_project import render

REPO = Path(__file__).resolve().parents[1]


def files_of(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("My-App", "'My-App' is not a valid project name: use lower-case letters, digits"),
        ("2do", "'2do' is not a valid project name"),
        ("class", "'class' is taken by Python or by what the project imports"),
        ("json", "'json' is taken by Python or by what the project imports"),
        ("microback", "'microback' is taken by Python or by what the project imports"),
        ("gevent", "a module named 'gevent' is already installed ("),
    ],
)
def test_a_bad_name_is_refused_in_one_line(
    name: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new", name]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"microback: error: {message}")
    assert error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_existing_folder_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "mine.txt").write_text("keep me")
    assert main(["new", "tasks"]) == 2
    assert capsys.readouterr().err == (
        f"microback: error: {tmp_path / 'tasks'} already exists; pick another name or remove it\n"
    )
    assert files_of(tmp_path) == ["tasks/mine.txt"]


def test_a_project_with_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new", "tasks"]) == 0
    out = capsys.readouterr().out
    assert "microback db migrate tasks.app:app && microback serve tasks.app:app" in out
    root = tmp_path / "tasks"
    assert files_of(root) == [
        ".env.example",
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "tasks/__init__.py",
        "tasks/api.py",
        "tasks/app.py",
        "tasks/migrations/0001_create_tables.py",
        "tasks/models.py",
        "tasks/pages.py",
        "tasks/settings.py",
        "tasks/static/style.css",
        "tasks/templates/account.html",
        "tasks/templates/base.html",
        "tasks/templates/tasks.html",
        "tests/conftest.py",
        "tests/test_api.py",
        "tests/test_migrations.py",
        "tests/test_pages.py",
    ]
    written = "".join(p.read_text() for p in root.rglob("*") if p.is_file())
    assert "__project__" not in written and "__PROJECT__" not in written and "#%" not in written
    assert '"microback[templates,static]",' in (root / "pyproject.toml").read_text()
    assert "TASKS_PASSWORD_ROUNDS=12" in (root / ".env.example").read_text()
    assert "from . import api, pages" in (root / "tasks" / "app.py").read_text()
    # No temporary folder is left beside it.
    assert [p.name for p in tmp_path.iterdir()] == ["tasks"]


def test_an_api_only_project_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new", "orders", "--api-only", "--postgresql"]) == 0
    root = tmp_path / "orders"
    assert "orders/pages.py" not in files_of(root)
    assert not (root / "orders" / "templates").exists()
    assert not (root / "tests" / "test_pages.py").exists()
    assert '"microback[postgresql]",' in (root / "pyproject.toml").read_text()
    settings = (root / "orders" / "settings.py").read_text()
    assert 'DEFAULT_DATABASE_URL = "postgresql://postgres@localhost:5432/orders"' in settings
    app = (root / "orders" / "app.py").read_text()
    assert "Templates" not in app and "login_url" not in app
    conftest = (root / "tests" / "conftest.py").read_text()
    assert 'os.environ.setdefault("MICROBACK_TEST_DATABASES", "postgresql")' in conftest
    assert "createdb -h localhost -U postgres orders" in (root / "README.md").read_text()


def test_the_api_only_project_passes_its_own_tests(tmp_path: Path) -> None:
    """Run from this working tree (PYTHONPATH), in a new interpreter; the slow test installs."""
    subprocess.run(
        [sys.executable, "-m", "microback", "new", "notebook", "--api-only"],
        cwd=tmp_path, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    project = tmp_path / "notebook"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICROBACK_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(project)])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (frozenset(), "a\nd\ne\n"),
        (frozenset({"html"}), "a\nb\ne\n"),
        (frozenset({"html", "postgresql"}), "a\nb\nc\ne\n"),
    ],
)
def test_render_keeps_the_lines_whose_marks_hold(flags: frozenset[str], expected: str) -> None:
    text = "a\n#% if html\nb\n#% if postgresql\nc\n#% end\n#% else\nd\n#% end\ne\n"
    assert render(text, flags, {}) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("#% if html\n", "an '#% if' has no '#% end'"),
        ("#% end\n", "line 1: misplaced '#% end'"),
        ("#% if\n", "line 1: misplaced '#% if'"),
    ],
)
def test_render_refuses_misplaced_marks(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        render(text, frozenset(), {})
