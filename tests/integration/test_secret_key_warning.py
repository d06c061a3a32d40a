"""The "No secret key set" warning: said by ``microback serve`` for an app that signs with a
generated key, and by nothing else (issue 11, item 4)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from serving import StartServer, run_microback, write_module

#: An app with a database, users and sessions: it signs session cookies and one-time links.
SIGNING_APP = """
    from microback import App
    from microback.db import Database
    from microback.security import Auth

    app = App()
    db = Database(app, "sqlite:///signing.db")
    auth = Auth(app, db, password_rounds=4)


    @app.get("/")
    def index(request):
        return {"user": request.user.is_authenticated}
"""

#: A JSON API that signs nothing: it needs no key, and is told nothing about one.
PLAIN_APP = """
    from microback import App

    app = App()


    @app.get("/")
    def index(request):
        return {"hello": "world"}
"""

WARNING = "No secret key set"


@pytest.fixture
def apps(tmp_path: Path) -> Path:
    write_module(tmp_path, "signing.py", SIGNING_APP)
    write_module(tmp_path, "plain.py", PLAIN_APP)
    return tmp_path


@pytest.mark.parametrize(
    "command",
    [
        ("routes", "signing:app"),
        ("check", "--deploy", "signing:app"),
        ("db", "status", "signing:app"),
        ("db", "create-tables", "signing:app"),
    ],
)
def test_commands_that_do_not_serve_say_nothing_about_the_key(
    apps: Path, command: tuple[str, ...]
) -> None:
    done = run_microback(*command, cwd=apps)
    assert WARNING not in done.stderr + done.stdout, done.stderr


def test_serving_an_app_that_signs_warns_once_naming_what_it_signs(
    start_server: StartServer, apps: Path
) -> None:
    server = start_server("signing:app")
    warnings = [line for line in server.lines if WARNING in line]
    assert len(warnings) == 1, server.log
    assert (
        "session cookies, one-time links are signed with a random key made at start-up; "
        "they will not survive a restart." in warnings[0]
    )


@pytest.mark.parametrize("workers", [(), ("--workers", "2")])
def test_serving_an_app_that_signs_nothing_says_nothing(
    start_server: StartServer, apps: Path, workers: tuple[str, ...]
) -> None:
    server = start_server("plain:app", *workers)
    server.send_signal(signal.SIGTERM)  # the whole log, start-up to stop, is then read
    assert server.wait() == 0
    assert "listening on" in server.log
    assert WARNING not in server.log


def test_workers_serving_an_app_that_signs_warn_once(
    start_server: StartServer, apps: Path
) -> None:
    server = start_server("signing:app", "--workers", "2")
    server.wait_for_line(r"2 worker\(s\) serving", 15)
    server.send_signal(signal.SIGTERM)
    assert server.wait() == 0
    warnings = [line for line in server.lines if WARNING in line]
    assert len(warnings) == 1, server.log
    assert (
        "session cookies, one-time links are signed with a random key the master made"
        in (warnings[0])
    )
