"""The notes example: its migrations build the schema its models expect, and its API answers.

Runs on each backend selected by MICROBACK_TEST_DATABASES, through the real ``microback db``
command, so the example's migrations cannot drift from its models.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from microback.testing import TestClient, database_servers, database_url

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "notes"
DIRECT = (  # until microback/cli.py hands `db` to microback.db.cli (see test_migrations.py)
    "import sys\n"
    "from microback.cli import load\n"
    "from microback.db.cli import main\n"
    "sys.exit(main(sys.argv[1:], load))\n"
)


def microback_db(*args: str, database_url: str) -> str:
    from microback.cli import build_parser

    wired = "db" in build_parser().format_help().split()
    command = ["-m", "microback", "db"] if wired else ["-c", DIRECT]
    done = subprocess.run(
        [sys.executable, *command, *args],
        env={**os.environ, "DATABASE_URL": database_url, "MICROBACK_SECRET_KEY": "k" * 40},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


@pytest.fixture
def notes(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The example's module, on a database its migrations have brought up to date."""
    target = f"{EXAMPLE / 'app.py'}:app"
    out = microback_db("migrate", target, database_url=database_url)
    assert out == "applied 0001_create_note\napplied 0002_add_note_title\n"
    status = microback_db("status", target, database_url=database_url)
    assert status.splitlines()[-1] == "the schema matches the models"

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MICROBACK_SECRET_KEY", "k" * 40)
    spec = importlib.util.spec_from_file_location("example_notes", EXAMPLE / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    module.db.close_all()


def test_notes_are_created_listed_by_page_and_shown(notes: ModuleType) -> None:
    client = TestClient(notes.app)
    for n in range(3):
        created = client.post_json("/notes", {"text": f"note {n}", "title": f"t{n}"}, status=201)
        assert created.json == {"id": n + 1, "text": f"note {n}", "title": f"t{n}"}

    first = client.get("/notes?limit=2")
    assert [note["text"] for note in first.json["items"]] == ["note 0", "note 1"]
    assert first.json["next"] and 'rel="next"' in first.headers["Link"]
    second = client.get(first.headers["Link"].split(">")[0].lstrip("<"))
    assert [note["text"] for note in second.json["items"]] == ["note 2"]
    assert second.json["next"] is None

    assert client.get("/notes/2").json["title"] == "t1"
    assert client.get("/notes/99", status=404).json["status"] == 404
    assert "limit" in client.get("/notes?limit=zero", status=400).json["detail"]
    assert client.get("/notes?offset=2").json == {
        "items": [second.json["items"][0]],
        "next": None,
        "prev": 0,
    }


def test_a_bad_note_is_refused_field_by_field(notes: ModuleType) -> None:
    client = TestClient(notes.app)
    body = {"text": 5, "title": "t" * 201, "owner": 1}
    refused = client.post_json("/notes", body, status=422)
    assert [(e["path"], e["code"]) for e in refused.json["errors"]] == [
        (["text"], "type"),
        (["title"], "length"),
        (["owner"], "unknown_field"),
    ]
    assert client.get("/notes").json["items"] == []
