"""Helpers and fixtures for tests that run ``microback`` as a real process and talk to it over
loopback (tests/server/, tests/integration/, the worker tests; the fixtures are registered by
tests/conftest.py).

A server is started with ``--port 0``; the port is read back from its "listening on" log line,
which it logs only once the socket accepts connections, so no test sleeps to wait for it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

REPO = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"listening on https?://127\.0\.0\.1:(\d+)")
START_TIMEOUT = 15.0


def microback_command(*args: str) -> list[str]:
    """The command line for ``microback ARGS`` run by this test's Python."""
    return [sys.executable, "-m", "microback", *args]


def child_env() -> dict[str, str]:
    """The environment for a child: this checkout importable, no MICROBACK_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROBACK_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_module(directory: Path, name: str, source: str) -> Path:
    """Write ``name`` (a file name such as ``app.py``) with dedented *source* into *directory*."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def run_microback(
    *args: str, cwd: Path, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``microback ARGS`` to completion and capture its output."""
    return subprocess.run(
        microback_command(*args),
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


class ServerProcess:
    """A running ``microback serve``, with its stderr collected line by line."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        port: int = 0,
        preexec_fn: Callable[[], None] | None = None,
        *,
        microback: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        # microback= and env=: another installation's command (a project's virtualenv).
        self.process = subprocess.Popen(
            [*(microback or microback_command()), "serve", *args],
            cwd=cwd,
            env=child_env() if env is None else env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec_fn,  # e.g. set resource limits for the child only
        )
        self.lines: list[str] = []
        self._new_lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        try:
            if port:
                self.port = port
                self._wait_until_accepting()
            else:
                self.port = int(self.wait_for_line(LISTENING, START_TIMEOUT).group(1))
        except BaseException:
            self.close()  # not yet known to the fixture, which kills only what started
            raise

    def _wait_until_accepting(self) -> None:
        # For runs that do not log the "listening on" line (--log-level warning).
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"the server did not start; stderr was:\n{self.log}")

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            line = line.rstrip("\n")
            self.lines.append(line)
            self._new_lines.put(line)
        self._new_lines.put(None)

    def wait_for_line(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0
    ) -> re.Match[str]:
        """Wait until a stderr line matches *pattern* (checking the lines already seen first)."""
        regex = re.compile(pattern)
        for line in list(self.lines):
            if match := regex.search(line):
                return match
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new_lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            if match := regex.search(line):
                return match
        raise AssertionError(f"no stderr line matched {regex.pattern!r}; stderr was:\n{self.log}")

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit and for all of its stderr to be read; return its status."""
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return status

    def children(self) -> list[int]:
        """Process ids of the server's children (its workers), from /proc."""
        pid = self.process.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(child) for child in text.split()]

    def close(self) -> None:
        if self.process.poll() is None:
            workers = self.children()  # killed with their master, not left to notice it
            self.process.kill()
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()


@contextlib.contextmanager
def gunicorn(target: str, cwd: Path, *options: str) -> Iterator[int]:
    """Run gunicorn's gevent worker on *target* (``module:app``); give its port, stop it after."""
    # --no-control-socket: gunicorn 27 would otherwise open one in ~/.gunicorn/.
    command = [
        sys.executable, "-m", "gunicorn", "-k", "gevent", "--no-control-socket",
        "--bind", "127.0.0.1:0", "--chdir", str(cwd), *options, target,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=child_env(), stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        assert process.stderr is not None
        port = None
        for line in process.stderr:
            if listening := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line):
                port = int(listening.group(1))
            if "Booting worker" in line:
                break
        assert port is not None, "gunicorn did not start"
        yield port
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick stop; SIGTERM takes seconds here
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


class StartServer(Protocol):
    def __call__(self, *args: str, cwd: Path | None = None, port: int = 0) -> ServerProcess: ...


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Give ``start_server(*serve_args, cwd=tmp_path, port=0)``; each is killed afterwards.

    With port 0 the server picks a free port and the helper reads it from the log.
    """
    started: list[ServerProcess] = []

    def start(*args: str, cwd: Path | None = None, port: int = 0) -> ServerProcess:
        server = ServerProcess(["--port", str(port), *args], cwd or tmp_path, port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


#: A microback app used by most server tests. It records at import time whether gevent had
#: already patched the process, and prints a line when a slow request starts, so a test can
#: signal the server exactly while that request is in flight.
WEBAPP = """
    import sys
    import threading

    import gevent
    import gevent.local
    import gevent.monkey
    import peewee

    from microback import App

    PATCHED_AT_IMPORT = {
        "socket": gevent.monkey.is_module_patched("socket"),
        "threading_local": type(threading.local()).__module__,
        "peewee_state_is_greenlet_local": isinstance(
            peewee.SqliteDatabase(":memory:")._state, gevent.local.local
        ),
    }

    app = App(secret_key="integration-test-secret-key-0123456789")


    @app.get("/")
    def index(request):
        return {"hello": "world"}


    @app.get("/import-state")
    def import_state(request):
        return PATCHED_AT_IMPORT


    @app.get("/slow")
    def slow(request):
        seconds = float(request.args.get("seconds", "2"))
        print("slow request started", file=sys.stderr, flush=True)
        gevent.sleep(seconds)
        return "slow response complete"


    @app.post("/echo")
    def echo(request):
        return {"received": len(request.get_data())}


    @app.get("/boom")
    def boom(request):
        raise RuntimeError("kaboom")
"""


@pytest.fixture
def webapp(tmp_path: Path) -> Path:
    """Write ``webapp.py`` (see ``WEBAPP``) into the test's directory."""
    return write_module(tmp_path, "webapp.py", WEBAPP)


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def served(target: str, directory: Path, env: dict[str, str]) -> Iterator[str]:
    """``microback serve TARGET`` on a free loopback port until the block ends; its base URL."""
    port = free_port()
    log = (directory / "server.log").open("w")
    server = subprocess.Popen(
        microback_command("serve", target, "--host", "127.0.0.1", "--port", str(port)),
        cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"{target} did not start:\n" + (directory / "server.log").read_text()
                    ) from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def http_request(sock: socket.socket, path: str, headers: str = "", method: str = "GET") -> None:
    """Send one HTTP/1.1 request on *sock*."""
    request = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n"
    sock.sendall(request.encode("latin-1"))


def read_response(sock: socket.socket) -> bytes:
    """Read one response with a Content-Length body, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    assert length, f"no Content-Length in {head!r}"
    while len(body) < int(length.group(1)):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-body: {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def read_all(sock: socket.socket) -> bytes:
    """Read until the server closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}


#: A raw WSGI app (no framework between the server and the test) for the HTTP/1.1 tests. It
#: records every path it is called for, so a test can show that a refused request never
#: reached it, and counts close() calls on the iterables it returns.
RAW_APP = r"""
    import io
    import json
    from urllib.parse import unquote

    SEEN = []
    CLOSED = {"count": 0}


    class Closing:
        def __init__(self, chunks, fail_after=None):
            self.chunks = chunks
            self.fail_after = fail_after

        def __iter__(self):
            for index, chunk in enumerate(self.chunks):
                if self.fail_after is not None and index == self.fail_after:
                    raise RuntimeError("failed while streaming")
                yield chunk

        def close(self):
            CLOSED["count"] += 1


    def reply(start_response, data, status="200 OK", headers=()):
        body = json.dumps(data).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(body))), *headers])
        return [body]


    def app(environ, start_response):
        path = environ["PATH_INFO"]
        SEEN.append(environ.get("RAW_URI", path))
        if path == "/seen":
            return reply(start_response, SEEN)
        if path == "/closed":
            return reply(start_response, CLOSED)
        if path.startswith("/environ"):
            keys = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int))}
            keys["wsgi.input_terminated"] = environ["wsgi.input_terminated"]
            return reply(start_response, keys)
        if path == "/echo":
            body = environ["wsgi.input"].read()
            return reply(start_response, {
                "method": environ["REQUEST_METHOD"],
                "query": environ["QUERY_STRING"],
                "content_length": environ.get("CONTENT_LENGTH"),
                "body": body.decode("latin-1"),
            })
        if path == "/lines":
            lines = list(environ["wsgi.input"])
            return reply(start_response, [line.decode() for line in lines])
        if path == "/no-read":
            return reply(start_response, {"read": False})
        if path == "/stream":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return Closing([b"one,", b"", b"two,", b"three"])
        if path == "/stream-fails":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return Closing([b"one,", b"two,"], fail_after=1)
        if path == "/write":
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            write(b"written,")
            return [b"returned"]
        if path == "/file":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return environ["wsgi.file_wrapper"](io.BytesIO(b"x" * 100000), 8192)
        if path == "/bad-header":
            start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: injected=1")])
            return [b"should not be sent"]
        if path == "/header":  # an X-Value header from the query, percent-decoded as UTF-8
            value = unquote(environ["QUERY_STRING"])
            start_response("200 OK", [("Content-Type", "text/plain"), ("X-Value", value)])
            return [b"ok"]
        if path == "/length":  # Content-Length: 5 whatever the body (?n bytes of it)
            start_response("200 OK", [("Content-Length", "5")])
            return [b"x" * int(environ["QUERY_STRING"])]
        if path == "/too-long":
            start_response("200 OK", [("Content-Length", "3")])
            return [b"abcdef"]
        if path == "/boom":
            raise RuntimeError("kaboom from the raw app")
        return reply(start_response, {"path": path})
"""

#: Small limits for the shared server, so that each limit takes little traffic and time.
SHARED_LIMITS = (
    "--max-request-line", "1024",
    "--max-header-count", "20",
    "--max-header-size", "4096",
    "--max-body-size", "10000",
    "--header-timeout", "1",
    "--body-timeout", "1",
    "--keepalive-timeout", "1.5",
)  # fmt: skip


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``microback serve`` of ``RAW_APP`` with ``SHARED_LIMITS``, shared by the HTTP tests.

    Access lines are JSON (``--access-log-format json``), which the tests read back.
    """
    directory = tmp_path_factory.mktemp("http_server")
    write_module(directory, "rawapp.py", RAW_APP)
    server = ServerProcess(
        ["--port", "0", "rawapp:app", "--access-log-format", "json", *SHARED_LIMITS], directory
    )
    yield server
    server.close()


class Reader:
    """Read HTTP responses from one socket, one after another (pipelining included)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fp = _Unclosed(sock.makefile("rb"))

    def makefile(self, *args: object, **kwargs: object) -> Any:
        return self.fp  # http.client reads each response from this one buffered file

    def response(self, method: str = "GET") -> tuple[int, Any, bytes]:
        """Status, headers and body of the next response (``100 Continue`` skipped)."""
        response = http.client.HTTPResponse(self, method=method)  # type: ignore[arg-type]
        response.begin()
        return response.status, response.headers, response.read()


class _Unclosed:
    """A buffered file that http.client cannot close after one response."""

    def __init__(self, fp: Any) -> None:
        self._fp = fp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)

    def close(self) -> None:
        pass


def exchange(server: ServerProcess, raw: bytes, timeout: float = 5.0) -> bytes:
    """Send *raw* on a new connection and return everything until the server closes it."""
    with server.connect(timeout=timeout) as sock:
        sock.sendall(raw)
        return read_all(sock)


class Load:
    """GET *path* from several threads, as fast as answers come, until :meth:`stop`.

    Each answer's JSON is kept with the time it arrived. With *keep_alive*, each thread reuses
    one connection and, like every HTTP client (RFC 9112, 9.3.1), sends a request again on a
    new connection when a reused one was closed before any byte of the answer (RFC 9112 allows
    a server to close an idle connection at any time). With *retry* false it does not, as
    ``http.client`` alone does not: that too is a failure. Without *keep_alive*, each request
    has a connection of its own. Anything else is a failure.
    """

    def __init__(
        self,
        port: int,
        path: str = "/",
        threads: int = 4,
        keep_alive: bool = False,
        retry: bool = True,
    ):
        self.port = port
        self.path = path
        self.keep_alive = keep_alive
        self.retry = retry
        self.answers: list[tuple[float, dict[str, Any]]] = []
        self.failures: list[str] = []
        self.retried = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        used = False
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                used = False
            try:
                connection.request("GET", self.path)
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    self.failures.append(f"{response.status} {body[:200]!r}")
                else:
                    self.answers.append((time.monotonic(), json.loads(body)))
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                if not used or not self.retry:
                    self.failures.append(repr(exc))
                else:
                    self.retried += 1
                connection.close()
                connection = None
                continue
            except OSError as exc:
                self.failures.append(repr(exc))
                connection.close()
                connection = None
                continue
            used = True
            if not self.keep_alive or response.will_close:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def answers_since(self, moment: float) -> list[dict[str, Any]]:
        return [answer for at, answer in list(self.answers) if at >= moment]


def self_signed_certificate(directory: Path, name: str, host: str) -> tuple[Path, Path]:
    """A certificate and key for *host* (an IP address or a DNS name), valid for two days."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed (apt-get install -y openssl)")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    kind = "IP" if host.replace(".", "").isdigit() or ":" in host else "DNS"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={host}", "-addext", f"subjectAltName={kind}:{host}"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
