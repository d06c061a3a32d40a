"""Run docs/tutorial.md from its first command to its last, as a reader would, in one shell.

The tutorial is one session, not a set of separate examples: each step builds on the project
the steps before it left. So its blocks run in page order, in one ``bash`` in an empty
folder: a ```` ```sh ```` block's commands (``$`` lines with their output compared, as in
tests/test_shell_commands.py, or plain lines that must succeed), a ``file=PATH`` block
written to PATH in the project (the reader's edit), ``microback serve`` left running in the
background (answering HTTP) until the next one or the end. A ``fragment`` block is not run,
but must appear, word for word, in the project at the end: it quotes the generated code.

What differs from a reader's shell, and why:

- ``microback`` and ``python`` are this test's; the install commands (``python3 -m venv``,
  activating it, ``pip install``) are skipped: they need the package index, and
  tests/integration/test_new_project_installed.py runs them for real;
- the server's port 8000 is a free port (``--port``, and in the ``curl`` commands), so runs
  on one machine do not collide;
- the PostgreSQL database ``tasks`` is this run's own, created by the page's ``createdb``
  and dropped at the end (tests/test_docs.py checks the links, and test_docs and
  test_shell_commands leave this page to this test).

Marked ``commands`` with the other pages' shell commands (run by .ci/run).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from serving import free_port
from test_docs import _blocks
from test_shell_commands import _SERVER, SESSION_FUNCTIONS, Command, _compare, _parse

from microback.testing import server_url

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
INSTALLS = ("python3 -m venv", ". .venv/bin/activate", "pip install")

pytestmark = pytest.mark.commands


class Session:
    """The tutorial turned into one bash script, and what to compare afterwards."""

    def __init__(self, port: int, database: str) -> None:
        self.port, self.database = port, database
        self.lines = [SESSION_FUNCTIONS]
        self.compared: list[tuple[str, Command, bool]] = []  # (output file, command, server)
        self.fragments: list[tuple[int, str]] = []
        self.servers: list[str] = []  # their output files

    def adapt(self, text: str) -> str:
        text = text.replace("localhost:8000", f"localhost:{self.port}")
        page_url = "postgresql://postgres@127.0.0.1:5432/tasks"
        text = text.replace(page_url, f"{_pg_base()}/{self.database}")
        if text.startswith("createdb "):
            text = re.sub(r" tasks$", f" {self.database}", text)
        return text

    def add_block(self, line: int, info: list[str], text: str) -> None:
        tag = info[0] if info else ""
        names = [word[len("file=") :] for word in info if word.startswith("file=")]
        if names:
            self.lines.append(f'mkdir -p "$(dirname {shlex.quote(names[0])})"')
            self.lines.append(
                f"cat > {shlex.quote(names[0])} <<'TUTORIAL_FILE'\n{text}TUTORIAL_FILE"
            )
        elif "fragment" in info:
            self.lines.append(f"# fragment at line {line}")
            self.fragments.append((line, text))
        elif tag == "sh":
            block = _parse(f"docs/tutorial.md:{line}", text.splitlines())
            for number, command in enumerate(block.commands):
                self.add_command(f"{line}-{number}", command, block.prompted)

    def add_command(self, key: str, command: Command, prompted: bool) -> None:
        if command.text.startswith(INSTALLS):
            return
        text = self.adapt(command.text)
        out = f'"$RESULTS/{key}.out"'
        if _SERVER.search(text):
            if "--port" not in text:
                text += f" --port {self.port}"
            self.lines += [
                "stop_server",
                f"( {text}\n) >{out} 2>&1 &",
                "server=$!",
                f"wait_http http://127.0.0.1:{self.port}/",
            ]
            self.servers.append(f"{key}.out")
            if prompted:
                self.compared.append((f"{key}.out", command, True))
            return
        if prompted:
            # Not in a subshell: a variable set here ($TOKEN) is the next command's.
            self.lines.append(f"{text} >{out} 2>&1")
            self.compared.append((f"{key}.out", command, False))
        else:
            self.lines.append(text)
        self.lines.append(
            f'status=$?; if [ $status != 0 ]; then echo "failed ($status): {text[:200]}" >&2; '
            f"cat {out} 2>/dev/null >&2; stop_server; exit 94; fi"
        )

    def script(self) -> str:
        return "\n".join([*self.lines, "stop_server"]) + "\n"


def _pg_base() -> str:
    """The PostgreSQL server's URL without a database (MICROBACK_TEST_POSTGRESQL_URL)."""
    return server_url("postgresql").rsplit("/", 1)[0]


def _drop(database: str) -> None:
    import psycopg

    with psycopg.connect(server_url("postgresql"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
def database() -> object:
    name = f"microback_tutorial_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        _drop(name)  # reach the server before the tutorial starts: skip or fail as others do
    except Exception as exc:
        problem = f"PostgreSQL at {server_url('postgresql')} is unavailable: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {problem}", pytrace=False)
        pytest.skip(problem)
    yield name
    _drop(name)


def test_the_tutorial_runs_from_start_to_end(tmp_path: Path, database: str) -> None:
    session = Session(free_port(), database)
    for block in _blocks(TUTORIAL):
        session.add_block(block.line, block.info, block.text)
    home, results = tmp_path / "home", tmp_path / "results"
    home.mkdir()
    results.mkdir()
    (results / "run.sh").write_text(session.script())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICROBACK_", "PYTEST_"))}
    env.pop("DATABASE_URL", None)
    project = home / "tasks"
    env.update(
        RESULTS=str(results),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        # In place of 'pip install -e .': the checkout, and the project once it exists.
        PYTHONPATH=os.pathsep.join([str(ROOT), str(project)]),
        PYTHONUNBUFFERED="1",
    )
    done = subprocess.run(
        [str(shutil.which("bash")), str(results / "run.sh")],
        cwd=home, env=env, capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    problems = []
    if done.returncode != 0:  # the failed command's output, then what the script printed
        problems.append(f"exit {done.returncode}: {done.stderr}\n{done.stdout[-4000:]}")
        logs = [results / name for name in session.servers if (results / name).exists()]
        problems += [f"{log.name} (a server):\n{log.read_text()[-4000:]}" for log in logs]
    for name, command, server in session.compared:
        out = results / name
        actual = (
            [a.rstrip() for a in out.read_text().splitlines() if a.strip()] if out.exists() else []
        )
        problems += _compare(command, actual, server)
    written = "".join(p.read_text(errors="replace") for p in project.rglob("*") if p.is_file())
    for line, fragment in session.fragments:
        if fragment not in written:
            problems.append(f"docs/tutorial.md:{line}: this fragment is not in the project")
    assert not problems, "\n".join(problems)
