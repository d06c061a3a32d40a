"""``--reload``: a change to a source file under the app's directory reloads the workers."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import requests
from serving import StartServer, write_module

from microback.server.reload import SourceWatcher
from microback.server.target import source_directory

RELOAD_APP = """
    from helpers import greeting


    def app(environ, start_response):
        body = greeting().encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
"""


def test_reload_picks_up_a_change(start_server: StartServer, tmp_path: Path) -> None:
    write_module(tmp_path, "reloadapp.py", RELOAD_APP)
    helpers = write_module(tmp_path, "helpers.py", "def greeting():\n    return 'one'\n")
    server = start_server("reloadapp:app", "--reload")
    assert requests.get(server.url, timeout=10).text == "one"

    # A different size too: a .pyc is reused when size and mtime (in seconds) both match.
    helpers.write_text("def greeting():\n    return 'three'\n")
    server.wait_for_line(r"helpers\.py changed: starting 1 worker\(s\) with the code as it is")
    server.wait_for_line("reload done")
    deadline = time.monotonic() + 5  # the old worker may take a last connection as it stops
    while (answer := requests.get(server.url, timeout=10).text) != "three":
        assert answer == "one" and time.monotonic() < deadline


def test_watcher_sees_python_files_added_changed_and_removed(tmp_path: Path) -> None:
    write_module(tmp_path, "app.py", "x = 1\n")
    write_module(tmp_path, "pkg/models.py", "y = 1\n")
    write_module(tmp_path, ".venv/lib/site.py", "")
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    write_module(tmp_path, "env/pyvenv.cfg", "home = /usr\n")
    watcher = SourceWatcher(tmp_path)
    assert watcher.changed() == []

    later = time.time() + 5
    os.utime(tmp_path / "app.py", (later, later))
    write_module(tmp_path, "pkg/views.py", "")
    (tmp_path / "pkg" / "models.py").unlink()
    write_module(tmp_path, "env/lib/ignored.py", "")  # inside a virtual environment
    write_module(tmp_path, "notes.txt", "not python")

    assert watcher.changed() == ["app.py", "pkg/models.py", "pkg/views.py"]
    assert watcher.changed() == []


def test_watched_directory_is_the_one_holding_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, "project/web/app.py", "")
    write_module(tmp_path, "project/reloadpkg/__init__.py", "")
    monkeypatch.chdir(tmp_path / "project")
    monkeypatch.setattr(sys, "path", list(sys.path))  # source_directory puts "." first

    assert source_directory("web/app.py:app") == tmp_path / "project" / "web"
    assert source_directory("reloadpkg.views:app") == tmp_path / "project"
    assert source_directory("nosuchmodule:app") == tmp_path / "project"
