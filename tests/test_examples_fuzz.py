"""schemathesis against every example app's OpenAPI document (issue 14): 0 failures.

Each example runs under a real ``microback serve`` on a loopback port, on a fresh SQLite file
prepared as its docstring says, and ``st run`` (schemathesis's command, a test dependency)
reads its ``/openapi.json`` and sends what it generates over HTTP, as any client would. A real
server rather than the WSGI app in process: what a client meets is the server's framing and
limits as much as the app, and a 500 or an undocumented status from either is a failure.

Every operation is tested in all of schemathesis's phases (examples, coverage, fuzzing, and
stateful sequences that feed the ids one answer gives into the next request), with a fixed
seed and a bounded number of cases per operation, so a run takes a few minutes and a failure
can be replayed (``st replay``, or the same seed). The checks: no 5xx, every status answered
is documented, every Content-Type is documented, bodies conform to their schemas, and the
stateful ones (a deleted resource is gone, a created one can be read).

Marked ``fuzz``: .ci/run runs it after the README's command (``-m fuzz``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from serving import REPO, child_env, microback_command, served

pytestmark = pytest.mark.fuzz

EXAMPLES = REPO / "examples"
SEED = "14"
MAX_EXAMPLES = "25"  # cases per operation and phase: one to two minutes per example here
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "use_after_free",
        "ensure_resource_availability",
    ]
)
PASSWORD = "correct horse battery staple"


def example_env(directory: Path) -> dict[str, str]:
    return {
        **child_env(),
        "MICROBACK_SECRET_KEY": "fuzz-test-secret-key-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{directory / 'example.db'}",
        "ACCOUNTS_PASSWORD_ROUNDS": "10",  # the least bcrypt allows: log-ins stay cheap
    }


def prepare(app_file: Path, directory: Path, *command: str) -> str:
    """``microback db COMMAND TARGET`` for the example; its target."""
    target = f"{app_file}:app"
    subprocess.run(
        microback_command("db", *command, target),
        cwd=directory, env=example_env(directory), check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return target


def schemathesis(base: str, directory: Path, *options: str) -> None:
    """``st run`` against ``base``'s document; fails with schemathesis's report on anything
    it found, or when it tested fewer operations than the document has."""
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    assert st is not None, "schemathesis is not installed (pip install -e '.[test]')"
    done = subprocess.run(
        [
            st, "run", f"{base}/openapi.json",
            "--seed", SEED, "--max-examples", MAX_EXAMPLES, "--workers", "1",
            "--checks", CHECKS, "--no-color", "--generation-database", "none",
            "--report", "junit", "--report-dir", str(directory / "report"),
            *options,
        ],
        cwd=directory, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    tested = re.search(r"Tested: (\d+)", done.stdout)
    selected = re.search(r"Selected: (\d+)/(\d+)", done.stdout)
    assert tested and selected, done.stdout
    assert tested[1] == selected[1] == selected[2], done.stdout
    assert re.search(r"\d+ generated, \d+ passed", done.stdout), done.stdout
    server_log = (directory / "server.log").read_text()
    assert "Traceback" not in server_log, server_log


def test_hello(tmp_path: Path) -> None:
    with served(f"{EXAMPLES / 'hello.py'}:app", tmp_path, example_env(tmp_path)) as base:
        schemathesis(base, tmp_path)


def test_notes(tmp_path: Path) -> None:
    target = prepare(EXAMPLES / "notes" / "app.py", tmp_path, "migrate")
    with served(target, tmp_path, example_env(tmp_path)) as base:
        schemathesis(base, tmp_path)


def test_accounts(tmp_path: Path) -> None:
    target = prepare(EXAMPLES / "accounts" / "app.py", tmp_path, "create-tables")
    with served(target, tmp_path, example_env(tmp_path)) as base:
        account = {"email": "fuzz@example.org", "password": PASSWORD}
        assert requests.post(f"{base}/api/signup", json=account, timeout=30).status_code == 201
        # A token for the notes API, so its operations are reached and not only their 401.
        # Not the "account" scope: with it, the stateful phase lists the tokens and revokes
        # each, its own first, and every case after that is a 401.
        asked = {**account, "name": "fuzz", "scopes": ["notes:read", "notes:write"]}
        answer = requests.post(f"{base}/api/tokens", json=asked, timeout=30)
        assert answer.status_code == 201, answer.text
        bearer = f"Authorization: Bearer {answer.json()['token']}"
        schemathesis(base, tmp_path, "--header", bearer)


def test_bank(tmp_path: Path) -> None:
    target = prepare(EXAMPLES / "bank" / "app.py", tmp_path, "create-tables")
    env = {**example_env(tmp_path), "BANK_PASSWORD_ROUNDS": "10"}
    with served(target, tmp_path, env) as base:
        account = {"email": "fuzz@example.org", "password": PASSWORD}
        assert requests.post(f"{base}/api/signup", json=account, timeout=30).status_code == 201
        answer = requests.post(f"{base}/api/tokens", json=account, timeout=30)
        assert answer.status_code == 201, answer.text
        bearer = f"Authorization: Bearer {answer.json()['token']}"
        schemathesis(base, tmp_path, "--header", bearer)
