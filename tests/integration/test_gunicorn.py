"""An ``App`` is a plain WSGI callable: gunicorn's gevent worker runs it as it is."""

from __future__ import annotations

import signal
import subprocess
import sys

import requests

from .conftest import REPO, child_env


def test_gunicorn_gevent_worker_serves_the_hello_example() -> None:
    # --no-control-socket: gunicorn 27 would otherwise open one in ~/.gunicorn/.
    command = [
        sys.executable, "-m", "gunicorn", "-k", "gevent", "--no-control-socket",
        "--bind", "127.0.0.1:0", "--chdir", str(REPO / "examples"), "hello:app",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=child_env(), stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        assert process.stderr is not None
        port = None
        for line in process.stderr:
            if "Listening at: http://127.0.0.1:" in line:
                port = int(line.rsplit(":", 1)[1].split()[0])
            if "Booting worker" in line:
                break
        assert port is not None, "gunicorn did not start"

        response = requests.get(f"http://127.0.0.1:{port}/hello/gunicorn", timeout=10)

        assert response.status_code == 200
        assert response.json() == {"message": "Hello, gunicorn!"}
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick stop; SIGTERM takes seconds here
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
