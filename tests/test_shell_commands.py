"""Run every shell command shown in README.md, docs/ and examples/, as written.

Where the commands are:

- every ```` ```sh ```` block of README.md and docs/*.md. In a block whose lines start with
  ``$ ``, each such line is a command and the lines after it are its output, compared line by
  line (``...`` matches any text, and any run of digits matches any other: pids, times,
  ports). A block without ``$`` is a list of commands, each of which must succeed;
  the files they name are the page's (its ``python`` program above the block, saved as the
  module the commands load, such as ``shop.py`` for ``shop:app``), except where
  :func:`_project` says;
- a command shown in any other block (``text``, ``ini``, ...) fails
  :func:`test_every_shell_command_is_in_a_block_this_test_runs`: it would be run by nothing;
- the ``::`` blocks of each example's module docstring (``examples/*/app.py``), run in a copy
  of the example's folder ("From this folder"), all the blocks of one docstring as one session.

How they run: each block (or docstring) runs in a fresh project folder seen as
``/home/me/notes``, inside its own network and mount namespaces (``unshare``): ports 8000,
8080 and 443 are free there whatever else runs on the machine, ``/run`` and ``/home`` are
private, and nothing outside is touched. ``microback`` and ``python`` are the ones of this
test's environment. A command that starts a server (``microback serve``, ``gunicorn``) keeps
running while the commands after it talk to it, until the next server command or the end of
the block; it must answer HTTP (any status below 500), then stop on SIGTERM with status 0.
A job worker (``microback worker``) must say it is running jobs, then stop the same way.
``curl`` fails on an HTTP error status (a ``.curlrc`` with ``fail-with-body``), so a command
that gets a 400 fails its test.

The pages' commands name files the pages describe but do not show in full (the serving page's
``notes.py``, a ``broken.py``, a certificate); :data:`PROJECTS` makes them. Installing
(``pip install -e``) needs the package index, which the namespace cannot reach: those commands
are the README's, which ``.ci/run`` runs as written (checked below).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# docs/tutorial.md is one session whose steps build on each other: tests/test_tutorial.py.
PAGES = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "tutorial.md"),
]
EXAMPLES = sorted((ROOT / "examples").glob("*/app.py"))
_FENCE = re.compile(r"^(\s*)(`{3,})\s*(\S*)")
#: A command that runs until it is stopped without serving HTTP: a job worker.
_WORKER = re.compile(r"^(\w+=\S*\s+)*(\S*/)?microback worker\b")
#: A command that starts a server: after any VAR=value, microback serve (also as
#: python -m microback or .venv/bin/microback) or gunicorn.
_SERVER = re.compile(
    r"^(\w+=\S*\s+)*(\S*/)?(gunicorn|microback serve|python -m microback serve)\b"
)


@dataclass
class Command:
    text: str
    output: list[str] | None = None  # None: not compared (a block without "$")


@dataclass
class Block:
    where: str  # page:line
    commands: list[Command]
    prompted: bool  # "$ " lines, with their output
    example: Path | None = None  # the example folder to copy, for a docstring
    setup: list[str] = field(default_factory=list)


def _sh_blocks(page: Path) -> list[Block]:
    blocks, lines, index = [], page.read_text(encoding="utf-8").splitlines(), 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        start, body = index, []
        while not lines[index].strip().startswith(opening.group(2)):
            body.append(lines[index])
            index += 1
        index += 1
        if opening.group(3) == "sh":
            where = f"{page.relative_to(ROOT)}:{start + 1}"
            blocks.append(_parse(where, textwrap.dedent("\n".join(body)).splitlines()))
    return _with_clients_joined(blocks)


def _with_clients_joined(blocks: list[Block]) -> list[Block]:
    """A block of only ``curl`` commands ("from another terminal") goes on the session of the
    block before it, whose server it talks to."""
    joined: list[Block] = []
    for block in blocks:
        clients = all(c.text.startswith("curl ") for c in block.commands)
        if joined and clients and any(_SERVER.search(c.text) for c in joined[-1].commands):
            joined[-1].commands += block.commands
            joined[-1].where += f"+{block.where.rsplit(':', 1)[1]}"
        else:
            joined.append(block)
    return joined


def _parse(where: str, lines: list[str]) -> Block:
    if any(line.startswith("$ ") for line in lines):
        commands: list[Command] = []
        for line in lines:
            if line.startswith("$ "):
                commands.append(Command(line[2:], []))
            elif commands and line.strip():
                assert commands[-1].output is not None
                commands[-1].output.append(line.rstrip())
        return Block(where, commands, prompted=True)
    return Block(where, [Command(text) for text in _join_quoted(lines)], prompted=False)


def _join_quoted(lines: list[str]) -> list[str]:
    """One command per line, except that a quoted argument may go on over several lines."""
    commands, pending = [], ""
    for line in lines:
        if not line.strip() and not pending:
            continue
        pending = f"{pending}\n{line}" if pending else line.strip()
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # "No closing quotation": the command goes on
            continue
        if pending.rstrip().endswith("|") or pending.count("$(") > pending.count(")"):
            continue  # a pipe or a $( ... ) that goes on over the next line
        commands.append(pending)
        pending = ""
    assert not pending, f"unterminated command: {pending!r}"
    return commands


def _docstring_blocks(app: Path) -> Block:
    source = app.read_text(encoding="utf-8")
    docstring = source.split('"""')[1]
    lines, commands, index = docstring.splitlines(), [], 0
    while index < len(lines):
        if not lines[index].rstrip().endswith("::"):
            index += 1
            continue
        index += 1
        body = []
        while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
            body.append(lines[index])
            index += 1
        commands += _join_quoted(textwrap.dedent("\n".join(body)).splitlines())
    where = f"{app.relative_to(ROOT)}:1"
    return Block(where, [Command(text) for text in commands], False, example=app.parent)


# --- the files the pages' commands use -----------------------------------------------------

#: The notes app the serving, settings and security pages run (``notes:app``): the routes
#: docs/serving.md lists with ``microback routes``.
NOTES = """\
from microback import App, abort

app = App()


@app.get("/")
def index(request):
    return {"service": "notes"}


@app.post("/notes")
def create_note(request):
    return {"id": 1, "text": request.json_object.get_str("text")}, 201


@app.get("/notes/<int:note_id>")
def show_note(request, note_id):
    abort(404, f"no note {note_id}")
"""
#: docs/serving.md's start-up error: a setting read at import that is not a number.
BROKEN = """\
from microback import App

WORKERS = int("yes")
app = App()
"""


def _program_of(page: str, line: int = 10**9, naming: str = "") -> str:
    """The last ``python`` program above ``line`` of a page (quickstart's notes app), or the
    last one that mentions ``naming`` (``shop``), if one does."""
    text = (ROOT / page).read_text(encoding="utf-8").splitlines()[:line]
    programs = []
    for start in [i for i, row in enumerate(text) if row.strip() == "```python"]:
        body = text[start + 1 :]
        programs.append("\n".join(body[: body.index("```")]) + "\n")
    return ([p for p in programs if naming in p] or programs)[-1]


def _page_files(page: str) -> dict[str, str]:
    """The ``file=`` blocks of a page, by file name."""
    files, lines = {}, (ROOT / page).read_text(encoding="utf-8").splitlines()
    for index, row in enumerate(lines):
        match = re.match(r"^```python file=(\S+)$", row.strip())
        if match:
            body = lines[index + 1 :]
            files[match.group(1)] = "\n".join(body[: body.index("```")]) + "\n"
    return files


def _modules(block: Block) -> set[str]:
    """The modules the block's commands load, as in ``shop:app``."""
    return {
        word.split(":")[0]
        for command in block.commands
        for word in shlex.split(command.text, comments=True)
        if re.fullmatch(r"[A-Za-z_]\w*:\w+", word)
    }


def _serving_files() -> dict[str, str]:
    return {"notes.py": NOTES, "broken.py": BROKEN}


def _migrations_files(first_command: str) -> tuple[dict[str, str], list[str]]:
    """The migrations page's app, and what state each of its blocks starts from."""
    files = _page_files("docs/migrations.md")
    app = {"app.py": files["app.py"]}
    if first_command.startswith("microback db new create_note"):
        return app, []  # no table, no migration yet
    if first_command.startswith("microback db status"):
        # 0001 applied, 0002 written and pending (the page's "Changing a table").
        return files, ["microback db migrate app.py:app --to 0001_create_note"]
    # "Tables without migrations": the tables were made by create-tables.
    return app, ["microback db create-tables app.py:app"]


def _project(block: Block, directory: Path) -> list[str]:
    """Write the block's project into ``directory``; give the set-up commands to run first."""
    page = block.where.rsplit(":", 1)[0]
    setup: list[str] = []
    if block.example is not None:
        shutil.copytree(block.example, directory, dirs_exist_ok=True)
        return setup
    if page == "docs/migrations.md":
        files, setup = _migrations_files(block.commands[0].text)
    elif page == "README.md":
        files = {"examples/hello.py": (ROOT / "examples" / "hello.py").read_text("utf-8")}
    elif page in ("docs/quickstart.md", "docs/routing.md"):
        files = {"notes.py": _program_of("docs/quickstart.md")}
    elif page in ("docs/serving.md", "docs/settings.md", "docs/security.md"):
        files = _serving_files()
    else:  # the page's program above the block, as the module the commands name
        line = int(block.where.split(":")[1].split("+")[0])
        files = {f"{m}.py": _program_of(page, line, naming=m) for m in _modules(block)}
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    os.symlink(sys.prefix, directory / ".venv")  # quickstart's ".venv/bin/microback"
    if any("--certfile" in command.text for command in block.commands):
        subprocess.run(
            [str(shutil.which("openssl")), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-days", "2", "-subj", "/CN=localhost", "-keyout", "privkey.pem",
             "-out", "fullchain.pem"],
            cwd=directory, check=True, capture_output=True,
        )  # fmt: skip
    return setup


# --- running ---------------------------------------------------------------------------------


def _url(command: str) -> list[str]:
    """curl's arguments to reach the server that ``command`` starts."""
    words = shlex.split(command, comments=True)
    scheme = "https" if "--certfile" in words else "http"
    port, host = "8000", "127.0.0.1"
    binds = [words[i + 1] for i, word in enumerate(words[:-1]) if word in ("--bind", "-b")]
    if binds and binds[0].startswith("unix:"):
        return ["--unix-socket", binds[0][5:], "http://localhost/"]
    if binds:
        host, _, port = binds[0].rpartition(":")
        wildcard = {"[::]": "[::1]", "0.0.0.0": "127.0.0.1"}  # noqa: S104 (reached by loopback)
        host = wildcard.get(host, host)
    if "--port" in words:
        port = words[words.index("--port") + 1]
    return ["-k", f"{scheme}://{host}:{port}/"]


#: What a session's script starts with wherever it runs (tests/test_tutorial.py too): curl
#: failing on an error status, and the functions that stop a server and wait for it.
SESSION_FUNCTIONS = r"""
set -u
printf 'fail-with-body\nsilent\nshow-error\nmax-time = 20\n' > "$RESULTS/.curlrc"
export CURL_HOME="$RESULTS"
server=""
stop_server() {  # SIGTERM, then the status it exits with must be 0
    [ -n "$server" ] || return 0
    kill -TERM "$server"
    wait "$server"
    local status=$?
    server=""
    if [ "$status" != 0 ]; then echo "the server exited with status $status" >&2; exit 91; fi
}
wait_http() {  # until the server answers with a status below 500, for up to 60 s
    for _ in $(seq 600); do
        code=$(curl -q -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" 2>/dev/null)
        case "$code" in [1234]??) return 0;; esac
        sleep 0.1
    done
    echo "no HTTP answer from the server ($*)" >&2
    exit 92
}
"""
PRELUDE = (
    r"""
ip link set lo up
mount -t tmpfs tmpfs /run
mkdir -p /run/notes  # docs/serving.md's socket directory, which its reader makes
mount -t tmpfs tmpfs /home
mkdir -p /home/me/notes
mount --bind "$PROJECT" /home/me/notes
cd /home/me/notes
"""
    + SESSION_FUNCTIONS
)


def _installs(command: Command) -> bool:
    return "pip install -e" in command.text


def _script(block: Block, setup: list[str]) -> str:
    lines = [PRELUDE, *(f"{command} >/dev/null || exit 93" for command in setup)]
    for number, command in enumerate(block.commands):
        if _installs(command):
            continue  # needs the package index: .ci/run runs it (test_install_commands_...)
        out = f'"$RESULTS/{number}.out"'
        if _WORKER.search(command.text):
            lines.append("stop_server")
            lines.append(f"( {command.text}\n) >{out} 2>&1 &")
            lines.append("server=$!")
            # Ready when each of its processes has said "N jobs at a time"; then SIGTERM.
            words = shlex.split(command.text, comments=True)
            count = words[words.index("--workers") + 1] if "--workers" in words else "1"
            lines.append(
                f"for _ in $(seq 600); do [ $(grep -c 'jobs at a time' {out}) -ge {count} ] "
                "&& break; sleep 0.1; done"
            )
            lines.append(f"kill -0 $server || {{ cat {out} >&2; exit 95; }}")
        elif _SERVER.search(command.text) and not _expects_error(command):
            lines.append("stop_server")
            lines.append(f"( {command.text}\n) >{out} 2>&1 &")
            lines.append("server=$!")
            lines.append(f"wait_http {shlex.join(_url(command.text))}")
            if command.output:
                expected = len(command.output)
                lines.append(
                    f"for _ in $(seq 300); do [ $(wc -l <{out}) -ge {expected} ] && break; "
                    "sleep 0.1; done"
                )
        elif block.prompted:
            if "address already in use" in "\n".join(command.output or []):
                lines.append("stop_server")
                lines.append(
                    "python -c 'import socket,time; s=socket.socket(); "
                    's.bind(("127.0.0.1", 8000)); s.listen(); time.sleep(60)\' &'
                )
                lines.append("blocker=$!")
                lines.append("until (: >/dev/tcp/127.0.0.1/8000) 2>/dev/null; do sleep 0.1; done")
            if command.text == "echo $?":
                lines.append(f"echo $status >{out}")
            else:
                lines.append(f"{command.text} >{out} 2>&1\nstatus=$?")
            lines.append(f"echo $status >{out}.status")
            lines.append("[ -n \"${blocker:-}\" ] && kill $blocker && blocker=''")
        else:
            lines.append(f"{command.text}\nstatus=$?")
            lines.append(f'if [ $status != 0 ]; then echo "failed ($status): {number}" >&2; '
                         "stop_server; exit 94; fi")  # fmt: skip
    lines.append("stop_server")
    return "\n".join(lines) + "\n"


def _expects_error(command: Command) -> bool:
    return any("error" in line for line in command.output or [])


def _pattern(expected: str) -> re.Pattern[str]:
    parts = [re.sub(r"\d+", r"\\d+", re.escape(part)) for part in expected.split("...")]
    return re.compile(".*".join(parts))


def _compare(command: Command, actual: list[str], server: bool) -> list[str]:
    expected = command.output or []
    if server:  # the lines shown must come in this order; the log has others too
        remaining = iter(actual)
        missing = [e for e in expected if not any(_pattern(e).fullmatch(a) for a in remaining)]
        return [f"{command.text}: no line like {line!r}" for line in missing]
    if len(actual) == len(expected) and all(
        _pattern(e).fullmatch(a) for e, a in zip(expected, actual, strict=True)
    ):
        return []
    return [f"{command.text}:\n  expected {expected}\n  got      {actual}"]


def run_block(block: Block, tmp_path: Path) -> None:
    project, results = tmp_path / "project", tmp_path / "results"
    project.mkdir()
    results.mkdir()
    setup = _project(block, project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICROBACK_", "PYTEST_"))}
    env.update(
        PROJECT=str(project),
        RESULTS=str(results),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        HOME=str(results),
    )
    script = results / "run.sh"
    script.write_text(_script(block, setup))
    done = subprocess.run(
        [str(shutil.which("unshare")), "--net", "--mount", "bash", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    problems = [] if done.returncode == 0 else [f"exit {done.returncode}: {done.stderr}"]
    for number, command in enumerate(block.commands):
        out = results / f"{number}.out"
        actual = out.read_text().splitlines() if out.exists() else []
        if block.prompted:
            server = _SERVER.search(command.text) is not None and not _expects_error(command)
            problems += _compare(command, [a.rstrip() for a in actual if a.strip()], server)
        if problems and out.exists():
            problems.append(f"output of {command.text!r}:\n{out.read_text()}")
    assert not problems, f"{block.where}\n" + "\n".join(problems)


# --- tests -----------------------------------------------------------------------------------

BLOCKS = [block for page in PAGES for block in _sh_blocks(page)] + [
    _docstring_blocks(app) for app in EXAMPLES
]
#: Commands that install microback: .ci/run runs the README lines that hold them.
INSTALLS = [c for b in BLOCKS for c in b.commands if _installs(c)]
RUN_HERE = [b for b in BLOCKS if not all(_installs(c) for c in b.commands)]

# Minutes of servers starting and stopping: run with -m commands (.ci/run does), not with the
# README's test command.
pytestmark = [
    pytest.mark.commands,
    pytest.mark.skipif(
        shutil.which("unshare") is None and os.environ.get("CI", "").lower() != "true",
        reason="needs unshare (util-linux) and root",
    ),
]


@pytest.mark.parametrize("block", RUN_HERE, ids=[b.where for b in RUN_HERE])
def test_shell_block(block: Block, tmp_path: Path) -> None:
    run_block(block, tmp_path)


def test_install_commands_are_the_ones_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme_lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    run_by_ci = []
    for pattern in re.findall(r'grep -m1 -F "([^"]+)" README.md', ci):
        run_by_ci.append(next(line for line in readme_lines if pattern in line))
    assert INSTALLS
    for command in INSTALLS:
        assert any(line.startswith(command.text) for line in run_by_ci), (
            f"{command.text!r} is run neither here nor by .ci/run"
        )


#: The start of a line that is a shell command: a prompt, or a program a reader would type.
_COMMAND_LINE = re.compile(
    r"^(\$ |\.venv/bin/|(sudo )?(microback|curl|pip3?|python3?|gunicorn|createdb|psql|apt-get)"
    r" )"
)
#: Blocks whose lines are code, requests or a Python prompt, never shell commands.
_NOT_SHELL = {"sh", "python", "pycon", "http-session"}


def _commands_outside_sh(page: Path) -> list[str]:
    """Lines of ``page`` that read as shell commands in a block not tagged ``sh``."""
    found, lines, index = [], page.read_text(encoding="utf-8").splitlines(), 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent = len(opening.group(1))
        while not lines[index].strip().startswith(opening.group(2)):
            line = lines[index][indent:]
            if opening.group(3) not in _NOT_SHELL and _COMMAND_LINE.match(line):
                found.append(f"{page.relative_to(ROOT)}:{index + 1} ({opening.group(3)}): {line}")
            index += 1
        index += 1
    return found


def test_every_shell_command_is_in_a_block_this_test_runs() -> None:
    # A command shown in a ```text block (docs/deployment.md's benchmark run did) escapes
    # _sh_blocks and so every test: tag the block sh, or say it in the prose.
    pages = [*PAGES, ROOT / "docs" / "tutorial.md"]
    assert [line for page in pages for line in _commands_outside_sh(page)] == []
