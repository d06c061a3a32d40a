"""A real browser against a real server: headless Chromium, driven by selenium.

Chromium and chromedriver come from Debian's ``chromium`` and ``chromium-driver`` packages
(``.ci/run`` installs them). Selenium is pointed at both explicitly, so it never tries to
download a browser or a driver of its own. Without them the tests skip, except under
``CI=true``, where a missing browser is a failure: CI must not pass by running nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import served

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MICROBACK = [sys.executable, "-m", "microback"]


def _missing(problem: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {problem}", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium for the module's tests, closed at the end."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(path) is None:
            _missing(f"{path} is missing (apt-get install -y {package})")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)  # --no-sandbox: CI runs as root, where the sandbox won't
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _environment(directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROBACK_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        MICROBACK_SECRET_KEY="browser-test-secret-key-0123456789abcdef",
        DATABASE_URL=f"sqlite:///{directory / 'app.db'}",
    )
    return env


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``microback serve examples/accounts/app.py:app`` on a fresh SQLite file; its base URL."""
    directory = tmp_path_factory.mktemp("accounts")
    env = _environment(directory)
    env["ACCOUNTS_PASSWORD_ROUNDS"] = "10"
    target = f"{REPO / 'examples' / 'accounts' / 'app.py'}:app"
    subprocess.run(
        [*MICROBACK, "db", "create-tables", target],
        cwd=directory, env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    with served(target, directory, env) as url:
        yield url


@pytest.fixture(scope="module")
def openapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``microback serve`` of tests/browser/openapi_app.py, its docs page at /docs."""
    directory = tmp_path_factory.mktemp("openapi")
    target = f"{REPO / 'tests' / 'browser' / 'openapi_app.py'}:app"
    with served(target, directory, _environment(directory)) as url:
        yield url


@pytest.fixture(scope="module")
def new_project_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A project made by ``microback new tasks``, migrated and served on SQLite; its base URL."""
    directory = tmp_path_factory.mktemp("new")
    project = directory / "tasks"
    env = _environment(directory)
    env["PYTHONPATH"] += os.pathsep + str(project)  # as its 'pip install -e .' would
    env["TASKS_PASSWORD_ROUNDS"] = "10"
    for args, cwd in (["new", "tasks"], directory), (["db", "migrate", "tasks.app:app"], project):
        subprocess.run(
            [*MICROBACK, *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60
        )
    with served("tasks.app:app", project, env) as url:
        yield url
