"""What local_cluster.py needs from the system: processes, ports, HTTP, waits."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The processes this process started, so that it reaps them (the others' are found by pid).
PROCESSES: dict[int, subprocess.Popen[bytes]] = {}


class ClusterError(RuntimeError):
    """Something did not start or stop as it should; the message says what and where."""


def request(
    address: tuple[str, int],
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection: status, headers (lower-case names), body."""
    connection = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        sent = {"Host": "localhost", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        answer = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, answer
    except OSError as exc:
        return 0, {"error": f"{type(exc).__name__}: {exc}"}, b""
    finally:
        connection.close()


def free_port(hosts: tuple[str, ...]) -> int:
    """A TCP port free on every one of ``hosts`` (the instances share one port number)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        try:
            for host in hosts[1:]:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise ClusterError(f"no port free on all of {', '.join(hosts)}")


def postgresql_bin(name: str) -> Path:
    """The newest installed PostgreSQL's ``name`` program (initdb, postgres)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3])
    )
    if not found:
        raise ClusterError(
            f"no PostgreSQL {name} under /usr/lib/postgresql; apt-get install postgresql"
        )
    return found[-1]


def database_user() -> str | None:
    """Whom PostgreSQL and PgBouncer run as: ``postgres`` for root (both refuse root)."""
    return "postgres" if os.geteuid() == 0 else None


@contextlib.contextmanager
def postgresql_connection(url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=3) as connection:
        yield connection


def postgresql_answers(url: str) -> bool:
    try:
        with postgresql_connection(url) as connection:
            connection.execute("SELECT 1")
        return True
    except Exception:
        return False


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs: a zombie (ended, not yet reaped) does not."""
    if pid in PROCESSES:
        if PROCESSES[pid].poll() is None:
            return True
        del PROCESSES[pid]
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (an instance's workers)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in task.read_text().split()]
    return found


def wait_for(condition: Any, timeout: float, what: str, log: Path | None = None) -> None:
    """Poll ``condition()`` until it is true; after ``timeout`` s fail, quoting ``log``'s end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, KeyError):
            if condition():
                return
        time.sleep(0.1)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise ClusterError(f"waited {timeout:g} s for {what}{tail}")
