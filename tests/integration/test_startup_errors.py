"""Start-up problems: one line on stderr, ``microback: error: ...``, no traceback, exit status."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from serving import child_env, run_microback, stderr_lines, write_module

GOOD_APP = """
    from microback import App

    app = App(secret_key="integration-test-secret-key-0123456789")
    other = App(secret_key="integration-test-secret-key-0123456789")
    NOT_AN_APP = 42
    AppClass = App


    def create_app():
        return App(secret_key="integration-test-secret-key-0123456789")
"""


def _fails_with_one_line(tmp_path: Path, *args: str, status: int = 2) -> str:
    result = run_microback("serve", "--port", "0", *args, cwd=tmp_path)
    lines = stderr_lines(result)

    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("microback: error: ")
    return lines[0].removeprefix("microback: error: ")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(
            "nosuchmodule:app",
            "cannot find module 'nosuchmodule' (no 'nosuchmodule' in ",
            id="module-not-found",
        ),
        pytest.param(
            "nosuchpkg.sub", "cannot find module 'nosuchpkg.sub'", id="package-not-found"
        ),
        pytest.param(
            "missing/file.py:app", "no such file: 'missing/file.py'", id="file-not-found"
        ),
        pytest.param(
            "good:application",
            "module 'good' has no attribute 'application'; callables in it: app, create_app, "
            "other; name the app as 'good:NAME'",
            id="no-such-attribute",
        ),
        pytest.param(
            "good:NOT_AN_APP",
            "good:NOT_AN_APP is an int, not a WSGI application",
            id="not-callable",
        ),
        pytest.param(
            "good:AppClass",
            "good:AppClass is a class, not a WSGI application (a callable taking environ and "
            "start_response); create the app in the module (app = App())",
            id="class-not-instance",
        ),
        pytest.param(
            "good:create_app",
            "a callable taking no arguments, not a WSGI application (a callable taking environ "
            "and start_response); if it is an app factory, call it in the module",
            id="factory",
        ),
        pytest.param("a:b:c", "'a:b:c' is not a valid target; use 'module:app' or", id="a:b:c"),
        pytest.param("good:", "'good:' is not a valid target", id="empty-attribute"),
        pytest.param("my-app:app", "'my-app' is not a module name", id="bad-module-name"),
        pytest.param(
            "good:create_app()", "'create_app()' in 'good:create_app()' is not", id="call"
        ),
    ],
)
def test_target_problems(tmp_path: Path, target: str, expected: str) -> None:
    write_module(tmp_path, "good.py", GOOD_APP)

    message = _fails_with_one_line(tmp_path, target)

    assert expected in message


def test_module_not_found_says_how_to_name_the_target(tmp_path: Path) -> None:
    message = _fails_with_one_line(tmp_path, "nosuchmodule:app")

    assert "use 'module:app' or 'path/to/file.py:app'" in message
    assert "run microback from the directory that contains it" in message


def test_exception_while_importing_names_type_message_and_user_line(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "broken.py",
        """
        from microback import App

        ratio = 1 / 0
        app = App()
        """,
    )

    message = _fails_with_one_line(tmp_path, "broken:app")

    assert (
        message == "importing 'broken' failed: ZeroDivisionError: division by zero (broken.py:3)"
    )


def test_exception_in_a_module_the_app_imports_points_at_that_file(tmp_path: Path) -> None:
    write_module(tmp_path, "config.py", "import json\n\nSETTINGS = json.loads('{not json')\n")
    write_module(tmp_path, "service.py", "import config\n\napp = None\n")

    message = _fails_with_one_line(tmp_path, "service.py:app")

    assert message.startswith("importing 'service.py' failed: JSONDecodeError: Expecting")
    assert message.endswith("(config.py:3)")


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    write_module(tmp_path, "typo.py", "app = 1\ndef broken(:\n    pass\n")

    message = _fails_with_one_line(tmp_path, "typo")

    assert message.startswith("importing 'typo' failed: SyntaxError: ")
    assert message.endswith("(typo.py:2)")


def test_missing_dependency_is_reported_as_an_import_error_in_the_users_file(
    tmp_path: Path,
) -> None:
    write_module(tmp_path, "needs.py", "import not_installed_anywhere\n\napp = None\n")

    message = _fails_with_one_line(tmp_path, "needs:app")

    assert message == (
        "importing 'needs' failed: ModuleNotFoundError: "
        "No module named 'not_installed_anywhere' (needs.py:1)"
    )


def test_bad_setting_prints_the_settings_error(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "configured.py",
        """
        from microback import App

        app = App(secret_key="integration-test-secret-key-0123456789", max_content_length="big")
        """,
    )

    message = _fails_with_one_line(tmp_path, "configured:app")

    assert "max_content_length" in message
    assert "importing" not in message  # the setting's own message, as it is


def test_port_in_use_exits_1(tmp_path: Path) -> None:
    write_module(tmp_path, "good.py", GOOD_APP)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_microback("serve", "good:app", "--port", str(port), cwd=tmp_path)

    assert result.returncode == 1
    assert stderr_lines(result) == [
        f"microback: error: cannot listen on 127.0.0.1:{port}: address already in use"
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "nosuch://x",
            "database URL 'nosuch://x': unknown database type 'nosuch'; use sqlite:///path.db, ",
            id="unknown-scheme",
        ),
        pytest.param(
            "postgresql://bob:hunter2@127.0.0.1:1/nowhere",
            "cannot connect to the database at postgresql://bob:***@127.0.0.1:1/nowhere: ",
            id="unreachable",
        ),
        pytest.param(
            "postgresql://bob@127.0.0.1:1/nowhere?sslmode=disable&password=hunter2",
            "cannot connect to the database at "
            "postgresql://bob@127.0.0.1:1/nowhere?sslmode=disable&password=***: ",
            id="password-in-the-query",
        ),
        pytest.param(
            "postgres://bob@127.0.0.1:1/nowhere?password=hunter2&max_connections=zero",
            "database URL 'postgres://bob@127.0.0.1:1/nowhere?password=***&max_connections=zero'",
            id="bad-option-password-in-the-query",
        ),
    ],
)
def test_bad_database_url_is_one_line_with_the_password_masked(tmp_path, url, expected):
    write_module(
        tmp_path,
        "dbapp.py",
        f"""
        from microback import App
        from microback.db import Database

        app = App(secret_key="integration-test-secret-key-0123456789")
        db = Database(app, {url!r})
        """,
    )
    message = _fails_with_one_line(tmp_path, "dbapp:app")
    assert message.startswith(expected)
    assert "hunter2" not in message


def test_with_workers_an_app_that_cannot_load_is_still_one_line(tmp_path: Path) -> None:
    # The master does not import the app: its workers do, and report why they could not.
    write_module(tmp_path, "broken.py", "from microback import App\n\nratio = 1 / 0\n")

    message = _fails_with_one_line(tmp_path, "broken:app", "--workers", "2")

    assert (
        message == "importing 'broken' failed: ZeroDivisionError: division by zero (broken.py:3)"
    )
    assert _fails_with_one_line(tmp_path, "nosuchmodule:app", "--workers", "1").startswith(
        "cannot find module 'nosuchmodule'"
    )


def test_a_first_worker_that_dies_before_fork_returns_is_still_reaped(tmp_path: Path) -> None:
    # A failing first worker used to hang the master forever, about one start in 10 to 60
    # on a loaded host: it exited before fork() returned in the master, while gevent had not
    # yet installed libev's SIGCHLD handler, so its SIGCHLD was discarded and gevent never
    # saw it exit. The fork here lets the master run again only once the worker is a zombie
    # (WNOWAIT: not reaped), so the master loses that race every time.
    write_module(
        tmp_path,
        "lose_the_race.py",
        """
        import functools
        import os

        from gevent import monkey

        monkey.patch_all()

        import gevent.os

        from microback.server.master import BootError, Master
        from microback.server.worker import WorkerConfig


        def load():
            raise RuntimeError("cannot load")


        def fork_and_lose_the_race():
            pid = gevent.os.fork_gevent()
            if pid:
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            return pid


        gevent.os.fork_and_watch = functools.partial(
            gevent.os.fork_and_watch, fork=fork_and_lose_the_race
        )
        try:
            Master(WorkerConfig(load=load, listeners=()), 1).run()
        except BootError as exc:
            print(f"boot error: {exc}")
        """,
    )

    result = subprocess.run(
        [sys.executable, "lose_the_race.py"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=10,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "boot error: cannot load\n", result.stderr
