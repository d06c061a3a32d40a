"""The microback implementation under a real ``microback serve``: the headers a server adds.

In-process there is no server, so ``Server``, ``Date`` and the framing on the wire are checked
here, over loopback. (``run.py`` checks them for every server and implementation before it
measures; gevent.pywsgi sends no ``Server`` header, which it reports as the server's.)
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import suite
import verify

from .conftest import TECHEMPOWER

REPO = TECHEMPOWER.parents[1]
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


@pytest.fixture
def served(bench_database: Path, tmp_path: Path):
    """``microback serve wsgi:app`` with the microback implementation; yields its port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROBACK_")}
    env.update(
        BENCH_FRAMEWORK="microback",
        DATABASE_URL=f"sqlite:///{bench_database}",
        MICROBACK_SECRET_KEY="techempower-verification-secret-key-0123",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "microback", "serve", "wsgi:app", "--port", "0"],
            cwd=TECHEMPOWER,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 15
        while not (match := LISTENING.search(log.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"microback serve did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield int(match.group(1))
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_every_test_type_over_http_with_server_and_date(served):
    connection = http.client.HTTPConnection("127.0.0.1", served, timeout=10)
    try:
        for test, path in suite.PATHS.items():
            connection.request("GET", path)  # one keep-alive connection for all six
            response = connection.getresponse()
            body = response.read()
            headers = {name.lower(): value for name, value in response.getheaders()}
            queries = path.partition("queries=")[2] or None
            found = verify.problems(
                test, response.status, headers, body, queries=queries, server_headers=True
            )
            assert found == [], f"{path}: {found}"
            assert headers["server"] == "microback"
    finally:
        connection.close()
