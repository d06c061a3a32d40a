"""``microback new`` as a user meets it: the project installed in a fresh virtual environment,
served with ``microback serve`` on a loopback port, and its own tests run there.

One virtual environment for the module: this checkout installed in it (``pip install -e``),
then each project (``pip install -e '.[test]'``), from the package index pip is configured
with. The README's commands are the ones run: its ``microback db migrate ... && microback
serve ...`` line (on a free port instead of 8000) and its test command. Slow: marked by
tests/conftest.py and run by .ci/run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from serving import REPO, ServerProcess

from microback.testing import TestDatabases, database_servers

__all__ = ["database_servers"]  # a fixture, imported for pytest

SKELETON = REPO / "microback" / "skeleton"
ADA = {"email": "ada@example.org", "password": "correct horse"}


def run(*command: str | Path, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    """Run ``command``; fail the test with its output when it fails."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, f"{shlex.join(map(str, command))}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def user_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A shell's environment: no MICROBACK_*, no PYTHONPATH to this checkout, a HOME of its own."""
    prefixes = ("MICROBACK_", "PYTEST_", "PYTHON", "DATABASE_URL", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["HOME"] = str(tmp_path_factory.mktemp("home"))
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, user_env: dict[str, str]) -> Path:
    """A fresh virtual environment with this checkout installed, as the README says."""
    directory = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", directory, cwd=directory, env=user_env)
    run(directory / "bin" / "pip", "install", "-q", "-e", REPO, cwd=directory, env=user_env)
    return directory


@pytest.fixture
def env_in(venv: Path, user_env: dict[str, str]) -> dict[str, str]:
    """The environment of a shell where the virtual environment is activated."""
    return {**user_env, "PATH": f"{venv / 'bin'}{os.pathsep}{user_env.get('PATH', '')}"}


def readme_command(readme: str, word: str) -> str:
    """The line of the README's ``sh`` blocks that holds ``word``."""
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.DOTALL)
    return next(line for block in blocks for line in block.splitlines() if word in line)


@pytest.fixture
def project(
    request: pytest.FixtureRequest, tmp_path: Path, env_in: dict[str, str]
) -> Iterator[Path]:
    """``microback new`` with the test's options (``request.param``), then installed."""
    name, *options = request.param
    out = run("microback", "new", name, *options, cwd=tmp_path, env=env_in)
    assert out.startswith(f"created {name}/: ")
    root = tmp_path / name
    install = readme_command((root / "README.md").read_text(), "pip install")
    assert install == "pip install -e '.[test]'"
    run("pip", "install", "-q", "-e", ".[test]", cwd=root, env=env_in)
    yield root


def serve(root: Path, env: dict[str, str]) -> ServerProcess:
    """Run the README's migrate-and-serve line, on a free port; give the server."""
    line = readme_command((root / "README.md").read_text(), "microback serve")
    migrate, serve = (shlex.split(part) for part in line.split("&&"))
    assert migrate[:3] == ["microback", "db", "migrate"], line
    assert "applied 0001_create_tables" in run(*migrate, cwd=root, env=env)
    assert serve[:2] == ["microback", "serve"], line
    return ServerProcess(["--port", "0", *serve[2:]], root, microback=["microback"], env=env)


def serve_and_check(root: Path, env: dict[str, str], *checks: Callable[[str], None]) -> None:
    """Serve the project as its README says, run each check on its URL, then stop it."""
    server = serve(root, env)
    try:
        for check in checks:
            check(server.url)
    finally:
        server.close()


def check_no_pages(url: str) -> None:
    assert requests.get(f"{url}/signup", timeout=30).status_code == 404
    assert requests.get(f"{url}/static/style.css", timeout=30).status_code == 404


def check_api(url: str) -> None:
    assert requests.post(f"{url}/api/signup", json=ADA, timeout=30).status_code == 201
    token = requests.post(f"{url}/api/tokens", json=ADA, timeout=30).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    made = requests.post(f"{url}/api/tasks", json={"title": "Ship"}, headers=bearer, timeout=30)
    assert made.status_code == 201
    assert requests.get(f"{url}/api/tasks", headers=bearer, timeout=30).json() == [
        {"id": made.json()["id"], "title": "Ship", "done": False}
    ]
    refused = requests.post(f"{url}/api/tasks", json={"title": ""}, headers=bearer, timeout=30)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["path"] == ["title"]


def check_pages(url: str) -> None:
    browser = requests.Session()
    browser.headers["Accept"] = "text/html"
    page = browser.get(f"{url}/signup", timeout=30)
    assert page.status_code == 200
    assert '<link rel="stylesheet" href="/static/style.css">' in page.text
    css = browser.get(f"{url}/static/style.css", timeout=30)
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None, page.text
    form = {"csrf_token": token.group(1), "email": "grace@example.org", "password": "compilers!"}
    tasks = browser.post(f"{url}/signup", data=form, timeout=30)  # 303, followed
    assert tasks.url == f"{url}/tasks"
    assert "Welcome, grace@example.org!" in tasks.text
    forged = browser.post(f"{url}/tasks", data={"title": "forged"}, timeout=30)
    assert forged.status_code == 403


@pytest.mark.parametrize("project", [("tasks",)], indirect=True)
def test_a_project_with_pages_serves_and_passes_its_tests(
    project: Path, env_in: dict[str, str]
) -> None:
    env = {**env_in, "MICROBACK_SECRET_KEY": "new-project-test-key-0123456789abcdef"}
    serve_and_check(project, env, check_pages, check_api)
    assert (project / "tasks.db").exists()  # on SQLite, beside the README
    run_its_tests(project, env_in, "11 passed")


@pytest.mark.parametrize("project", [("orders", "--api-only")], indirect=True)
def test_an_api_only_project_serves_and_passes_its_tests(
    project: Path, env_in: dict[str, str]
) -> None:
    serve_and_check(project, env_in, check_api, check_no_pages)
    run_its_tests(project, env_in, "6 passed")


@pytest.mark.parametrize("project", [("shop", "--postgresql")], indirect=True)
def test_a_postgresql_project_serves_and_passes_its_tests(
    project: Path, env_in: dict[str, str], database_servers: TestDatabases
) -> None:
    # The README's 'createdb shop' here is this run's own database, dropped at the end.
    env = {**env_in, "DATABASE_URL": database_servers.url("postgresql")}
    serve_and_check(project, env, check_pages, check_api)
    assert not (project / "shop.db").exists()
    # Its tests make and drop a PostgreSQL database of their own (tests/conftest.py there).
    output = run_its_tests(project, env_in, "11 passed")
    assert "[postgresql]" in output


def run_its_tests(project: Path, env: dict[str, str], passed: str) -> str:
    command = readme_command((project / "README.md").read_text(), "pytest")
    assert command == "python -m pytest"
    output = run(*shlex.split(command), "-v", "-p", "no:cacheprovider", cwd=project, env=env)
    assert f" {passed} in " in output, output
    return output


def test_the_wheel_ships_the_skeleton(
    venv: Path, tmp_path: Path, user_env: dict[str, str]
) -> None:
    run(venv / "bin" / "pip", "wheel", "-q", "--no-deps", "-w", tmp_path, REPO,
        cwd=tmp_path, env=user_env)  # fmt: skip
    (wheel,) = tmp_path.glob("microback-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if "/skeleton/" in n}
    files = {
        f"microback/{path.relative_to(SKELETON.parent)}"
        for path in SKELETON.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert files and shipped == files
