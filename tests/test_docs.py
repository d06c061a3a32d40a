"""Run the code in the documentation, so a documented answer cannot drift from the code.

The convention, for every page in ``docs/*.md`` and for ``README.md``:

- A fenced block tagged ```` ```python ```` is a **complete program**. It is run as a module of
  its own (fresh namespace, MICROBACK_* variables cleared, a temporary working directory). It
  must run without error.
- A block tagged ```` ```http-session ```` is **replayed** against ``app`` as defined by the
  nearest ``python`` program above it on the same page, through
  :class:`microback.testing.TestClient` (so also through ``wsgiref.validate``). It reads like
  ``curl -v``::

      > POST /notes                      request line: method and target
      > Content-Type: application/json   request headers
      >                                  a bare ">" starts the request body
      > {"text": "milk"}
      < 201 CREATED                      the exact status line werkzeug sends
      < Location: /notes/1               headers that must be present with this value
      <                                  a bare "<" starts the expected body
      < {"id": 1, "text": "milk"}

  Without a bare ``<`` line the body must be empty. A JSON body is compared as JSON (spacing
  and line breaks are free; types and key order are not), any other body as text. ``...`` in
  an expected value matches any text, as in doctest; in a JSON body it is matched against the
  JSON as ``json.dumps`` writes it on one line. Exchanges follow each other in one block, blank
  lines between them are ignored, and all the sessions after one program share its app, in
  page order.
- A block tagged ```` ```pycon ```` is an interactive session, run as a doctest (``ELLIPSIS``
  on); each block starts with a fresh namespace.
- A block tagged ```` ```python fragment ```` is a piece of a program and is **not** run. Use it
  for anything that is not complete on its own.
- A block whose tag is followed by ``file=PATH`` (```` ```python file=conftest.py ````,
  ```` ```toml file=pyproject.toml ````) is a file of the page's example project. The files of
  a page are written to an empty directory and ``pytest`` is run there; it must pass. This is
  how docs/testing.md shows a user's conftest and tests.
- Any other word after ``python`` is an error, so a typo cannot silently skip a test. Every
  other tag (``sh``, ``text``, ``json``, ...) is ignored.
- Relative links in the prose, with their ``#anchors``, must resolve.

Each program (with the sessions that follow it), each ``pycon`` block and each page's project
is one test, named after its page and line: ``test_program[docs/routing.md:12]``.
"""

from __future__ import annotations

import doctest
import importlib.metadata as metadata
import io
import json
import logging
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest
import webtest

from microback.cli import generated_key_warning
from microback.server.logs import StderrHandler
from microback.testing import TestClient

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TUTORIAL = ROOT / "docs" / "tutorial.md"

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,})(?P<info>[^`]*)$")


@dataclass
class Block:
    page: Path
    line: int  # the line of the first code line, 1-based
    info: list[str]
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass
class Program:
    block: Block
    sessions: list[Block] = field(default_factory=list)


def _blocks(page: Path) -> Iterator[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        start, body = index, []
        while index < len(lines) and not (
            lines[index].strip().startswith(fence) and not lines[index].strip().strip("`")
        ):
            body.append(lines[index][indent:])
            index += 1
        index += 1  # the closing fence
        yield Block(page, start + 1, opening["info"].split(), "\n".join(body) + "\n")


def _file_name(block: Block) -> str | None:
    names = [word[len("file=") :] for word in block.info[1:] if word.startswith("file=")]
    return names[0] if len(names) == 1 and len(block.info) == 2 else None


def _collect() -> tuple[list[Program], list[Block], dict[Path, list[Block]], list[str]]:
    programs: list[Program] = []
    doctests: list[Block] = []
    projects: dict[Path, list[Block]] = {}
    problems: list[str] = []
    for page in PAGES:
        current: Program | None = None
        for block in _blocks(page):
            tag = block.info[0] if block.info else ""
            if _file_name(block) is not None:
                if page != TUTORIAL:  # one session, run in order by tests/test_tutorial.py
                    projects.setdefault(page, []).append(block)
            elif tag == "python" and block.info == ["python"]:
                current = Program(block)
                programs.append(current)
            elif tag == "python" and block.info != ["python", "fragment"]:
                problems.append(f"{block.where}: unknown tag {' '.join(block.info)!r}")
            elif tag in ("py", "python3"):
                problems.append(f"{block.where}: tag {tag!r}; use 'python' or 'python fragment'")
            elif tag == "http-session":
                if current is None:
                    problems.append(f"{block.where}: http-session with no python program above")
                else:
                    current.sessions.append(block)
            elif tag == "pycon":
                doctests.append(block)
    return programs, doctests, projects, problems


PROGRAMS, DOCTESTS, PROJECTS, PROBLEMS = _collect()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run each block without the caller's MICROBACK_* settings, and undo what it changes."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("MICROBACK_"):
            del os.environ[name]
    monkeypatch.chdir(tmp_path)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _run_program(block: Block) -> types.ModuleType:
    name = "docs_example_" + re.sub(r"\W", "_", block.where)
    module = types.ModuleType(name)
    module.__file__ = str(block.page)
    # Pad with blank lines so a traceback points at the line in the page.
    code = compile("\n" * (block.line - 1) + block.text, str(block.page), "exec")
    sys.modules[name] = module  # dataclasses and pickling look the module up
    try:
        exec(code, module.__dict__)
    finally:
        del sys.modules[name]
    return module


# --- http-session -------------------------------------------------------------------------------


@dataclass
class Exchange:
    line: int
    method: str
    target: str
    request_headers: list[tuple[str, str]]
    request_body: str | None
    status: str
    headers: list[tuple[str, str]]
    body: str | None  # None: no bare "<" line, the body must be empty


def _parse_session(block: Block) -> list[Exchange]:
    exchanges: list[Exchange] = []
    lines = block.text.splitlines()
    index = 0

    def fail(message: str) -> NoReturn:
        pytest.fail(f"{block.where}+{index}: {message}", pytrace=False)

    def take(prefix: str) -> list[str]:
        nonlocal index
        taken = []
        while index < len(lines) and (lines[index] == prefix or lines[index][:2] == prefix + " "):
            taken.append(lines[index][2:])
            index += 1
        return taken

    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        start = index
        request = take(">")
        response = take("<")
        if not request or not response:
            fail("expected '> METHOD /path' lines, then '< STATUS' lines")
        method, _, target = request[0].partition(" ")
        try:
            request_headers, request_body = _headers_and_body(request[1:])
            headers, body = _headers_and_body(response[1:])
        except ValueError as exc:
            fail(str(exc))
        status = response[0]
        exchanges.append(
            Exchange(
                block.line + start,
                method,
                target.strip(),
                request_headers,
                request_body,
                status,
                headers,
                body,
            )
        )
    return exchanges


def _headers_and_body(lines: list[str]) -> tuple[list[tuple[str, str]], str | None]:
    headers: list[tuple[str, str]] = []
    for position, line in enumerate(lines):
        if not line:
            return headers, "\n".join(lines[position + 1 :])
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"not a header line: {line!r}")
        headers.append((name.strip(), value.strip()))
    return headers, None


def _matches(expected: str, actual: str) -> bool:
    if "..." not in expected:
        return expected == actual
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual, re.DOTALL) is not None


def _is_json(content_type: str) -> bool:
    mimetype = content_type.split(";")[0].strip()
    return mimetype == "application/json" or mimetype.endswith("+json")


def _canonical(text: str) -> str:
    return json.dumps(json.loads(text), ensure_ascii=False)


def _replay(client: TestClient, exchange: Exchange) -> list[str]:
    request = webtest.TestRequest.blank(exchange.target, method=exchange.method)
    for name, value in exchange.request_headers:
        request.headers[name] = value
    if exchange.request_body is not None:
        request.body = exchange.request_body.encode()
    response = client.do_request(request, expect_errors=True)

    errors = []
    if response.status != exchange.status:
        errors.append(f"status: expected {exchange.status!r}, got {response.status!r}")
    for name, value in exchange.headers:
        got = response.headers.get(name)
        if got is None or not _matches(value, got):
            errors.append(f"header {name}: expected {value!r}, got {got!r}")
    actual = response.body.decode("utf-8", "replace")
    expected = exchange.body or ""
    if actual and _is_json(response.content_type or ""):
        actual = _canonical(actual)
        if "..." not in expected:
            try:
                expected = _canonical(expected)
            except ValueError:
                errors.append(f"the expected body is not JSON: {expected!r}")
    else:
        actual, expected = actual.rstrip("\n"), expected.rstrip("\n")
    if not _matches(expected, actual):
        errors.append(f"body: expected\n    {expected}\n  got\n    {actual}")
    return errors


# --- tests --------------------------------------------------------------------------------------


def test_every_block_follows_the_convention() -> None:
    assert not PROBLEMS, "\n".join(PROBLEMS)


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.block.where for p in PROGRAMS])
def test_program(program: Program) -> None:
    module = _run_program(program.block)
    if not program.sessions:
        return
    app = getattr(module, "app", None)
    assert app is not None, f"{program.block.where}: a program with sessions must define app"
    client = TestClient(app)
    failures = []
    for session in program.sessions:
        for exchange in _parse_session(session):
            errors = _replay(client, exchange)
            if errors:
                where = f"{session.page.relative_to(ROOT)}:{exchange.line}"
                failures.append(
                    f"{where}: {exchange.method} {exchange.target}\n  " + "\n  ".join(errors)
                )
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.mark.parametrize("block", DOCTESTS, ids=[b.where for b in DOCTESTS])
def test_pycon(block: Block) -> None:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(
        block.text, {"__name__": "docs_pycon"}, block.where, str(block.page), block.line - 1
    )
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    runner.run(test, out=report.append)
    if runner.failures:
        pytest.fail("".join(report), pytrace=False)


def _run_project(
    blocks: list[Block], directory: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    for block in blocks:
        path = directory / str(_file_name(block))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,  # the projects run at once, on a machine that may be busy
    )


TESTING_PAGE = ROOT / "docs" / "testing.md"
CGI_FILTER = "\"ignore:'cgi' is deprecated:DeprecationWarning\","
WITHOUT_CGI_FILTER = "docs/testing.md without its cgi filter"


def _without_cgi_filter(blocks: list[Block]) -> list[Block]:
    (config,) = [b for b in blocks if _file_name(b) == "pyproject.toml"]
    assert CGI_FILTER in config.text
    without = Block(config.page, config.line, config.info, config.text.replace(CGI_FILTER, ""))
    return [without if b is config else b for b in blocks]


@pytest.fixture(scope="module", autouse=True)
def project_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Start every project's pytest run with the module, in the background.

    Each run is a new interpreter; started first, they overlap with the in-process tests and
    the whole file stays fast.
    """
    jobs = {str(page.relative_to(ROOT)): blocks for page, blocks in PROJECTS.items()}
    if TESTING_PAGE in PROJECTS and sys.version_info < (3, 13):
        jobs[WITHOUT_CGI_FILTER] = _without_cgi_filter(PROJECTS[TESTING_PAGE])
    prefixes = ("PYTEST_", "PYTHON", "MICROBACK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    with ThreadPoolExecutor(max_workers=max(len(jobs), 1)) as pool:
        yield {
            name: pool.submit(_run_project, blocks, tmp_path_factory.mktemp("project"), env)
            for name, blocks in jobs.items()
        }


@pytest.mark.parametrize(
    "page", sorted(PROJECTS), ids=[str(p.relative_to(ROOT)) for p in sorted(PROJECTS)]
)
def test_project(
    page: Path, project_runs: dict[str, Future[subprocess.CompletedProcess[str]]]
) -> None:
    result = project_runs[str(page.relative_to(ROOT))].result()
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="the cgi module is gone in 3.13")
def test_testing_page_needs_its_cgi_filter(
    project_runs: dict[str, Future[subprocess.CompletedProcess[str]]],
) -> None:
    """The filterwarnings line docs/testing.md asks for is needed: without it, the test errors."""
    result = project_runs[WITHOUT_CGI_FILTER].result()
    assert result.returncode != 0
    assert "DeprecationWarning: 'cgi' is deprecated" in result.stdout


# --- links ------------------------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def _prose(page: Path) -> list[str]:
    """The lines of a page outside fenced blocks."""
    lines, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = [line.lstrip("#").strip() for line in _prose(page) if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_links_resolve(page: Path) -> None:
    broken = []
    for line in _prose(page):
        for link in _LINK.finditer(line):
            target = link["target"]
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{target}: no heading for #{anchor}")
    assert not broken, "\n".join(broken)


# --- claims checked directly ---------------------------------------------------------------------


def _readme_program() -> Program:
    readme = [p for p in PROGRAMS if p.block.page.name == "README.md"]
    assert len(readme) == 1, "README.md should hold exactly one python program: the hello app"
    return readme[0]


def test_readme_hello_app_answers() -> None:
    module = _run_program(_readme_program().block)
    response = TestClient(module.app).get("/")
    assert response.status == "200 OK"
    assert response.json == {"message": "Hello from microback"}


def test_readme_shows_the_example_file() -> None:
    hello = (ROOT / "examples" / "hello.py").read_text(encoding="utf-8")
    assert _readme_program().block.text == hello


@pytest.mark.parametrize(
    ("page", "made"),
    [("settings.md", "made at start-up"), ("serving.md", "the master made for all workers")],
)
def test_pages_quote_the_secret_key_warning(page: str, made: str) -> None:
    # What microback serve logs for an app with Auth (tests/integration/test_secret_key_warning.py)
    message = generated_key_warning("session cookies, one-time links", made)
    text = " ".join((ROOT / "docs" / page).read_text(encoding="utf-8").split())
    assert message in text


# --- log lines --------------------------------------------------------------------------------

#: A line of microback's log as ``microback serve`` writes it (microback/server/logs.py).
_LOG_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \[\d+\] (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"[\w.]+: .+"
)


def test_the_log_line_pattern_is_the_servers() -> None:
    handler = StderrHandler(io.StringIO(), "text")
    record = logging.LogRecord("microback.db", logging.WARNING, __file__, 1, "a message", (), None)
    assert _LOG_LINE.fullmatch(handler.format(record))


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_log_lines_shown_are_in_the_servers_format(page: Path) -> None:
    # docs/migrations.md showed the pending-migrations warning with logging's default
    # "01:00:00,000" where microback serve writes "01:00:00 +0000".
    shown = [
        f"{block.where}: {line}"
        for block in _blocks(page)
        if block.info[:1] == ["text"]
        for line in block.text.splitlines()
        if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d", line) and not _LOG_LINE.fullmatch(line)
    ]
    assert shown == []


def test_the_quickstart_names_every_runtime_dependency() -> None:
    # It listed five packages after the server, jobs, metrics and validation had added four.
    text = " ".join((ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8").split())
    (listed,) = re.findall(r"the runtime needs only ([\w\s,-]+?)\.", text)
    named = set(re.split(r",\s*|\s+and\s+", listed))
    required = metadata.requires("microback") or []
    runtime = {re.split(r"[^\w-]", r, maxsplit=1)[0] for r in required if "extra ==" not in r}
    assert named == runtime
