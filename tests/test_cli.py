"""The ``microback`` command line: ``routes``, argument checking, and ``python -m microback``.

``serve`` runs a real server and is tested in ``tests/server/`` and ``tests/integration/``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from microback.cli import main

REPO = Path(__file__).resolve().parents[1]

ROUTED_APP = """
    from microback import App, Router

    app = App(secret_key="cli-test-secret-key-0123456789abcdef")
    api = Router(prefix="/api")


    @app.get("/")
    def index(request):
        return "home"


    @app.route("/notes/<int:note_id>", methods=["PUT", "DELETE"])
    def change_note(request, note_id):
        return {}


    @api.post("/notes")
    def create_note(request):
        return {}


    app.mount(api)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory to run the command from; modules imported from it are forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def write(directory: Path, name: str, source: str) -> None:
    (directory / name).write_text(textwrap.dedent(source).lstrip())


def test_routes_prints_aligned_methods_path_endpoint(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "routed.py", ROUTED_APP)

    status = main(["routes", "routed:app"])

    assert status == 0
    assert capsys.readouterr().out.splitlines() == [
        "GET,HEAD    /                     index",
        "POST        /api/notes            create_note",
        "DELETE,PUT  /notes/<int:note_id>  change_note",
    ]


def test_routes_accepts_a_file_path_and_a_bare_module(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "src").mkdir()
    write(project / "src", "routed_file.py", ROUTED_APP)
    write(project, "routed_module.py", ROUTED_APP)

    assert main(["routes", "src/routed_file.py:app"]) == 0
    by_file = capsys.readouterr().out
    assert main(["routes", "routed_module"]) == 0
    by_module = capsys.readouterr().out

    assert by_file == by_module
    assert "/api/notes" in by_file


def test_routes_of_a_plain_wsgi_callable_is_one_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        project,
        "plain.py",
        """
        def app(environ, start_response):
            start_response("200 OK", [])
            return [b""]
        """,
    )

    status = main(["routes", "plain:app"])

    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "microback: error: 'plain:app' is a WSGI application without a route table; "
        "'microback routes' lists the routes of a microback App\n"
    )


def test_routes_of_an_app_without_routes_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        project,
        "empty.py",
        'from microback import App\n\napp = App(secret_key="cli-test-secret-key-0123456789abc")\n',
    )

    assert main(["routes", "empty:app"]) == 0
    assert capsys.readouterr().err == "microback: 'empty:app' has no routes\n"


def test_routes_of_a_missing_module_is_one_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["routes", "not_a_module_here:app"]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("microback: error: cannot find module 'not_a_module_here'")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "app:app", "--port", "70000"], "port must be from 0 to 65535, not 70000"),
        (["serve", "app:app", "--port", "http"], "'http' is not a whole number"),
        (["serve", "app:app", "--connections", "0"], "must be 1 or more, not 0"),
        (["serve", "app:app", "--graceful-timeout", "-1"], "must be 0 or more seconds"),
        (["serve", "app:app", "--log-level", "loud"], "invalid choice: 'loud'"),
        (["serve"], "the following arguments are required: TARGET"),
    ],
)
def test_bad_options_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2

    err = capsys.readouterr().err
    assert "serve" in err
    assert "routes" in err


def test_python_dash_m_microback_runs_the_command(tmp_path: Path) -> None:
    write(tmp_path, "routed.py", ROUTED_APP)

    result = subprocess.run(
        [sys.executable, "-m", "microback", "routes", "routed:app"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "GET,HEAD    /                     index"
