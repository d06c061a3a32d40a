"""Access lines: what ``microback/server/access_log.py`` writes, in process and from a real server.

In-process: the first tests configure the ``microback`` loggers the way ``microback serve``
does, and put them back afterwards; the buffered short path writes exactly what ``logging``
would have written.

Through a real server: the tests after them start ``microback serve`` on ``APP`` and read its
JSON (or text) access lines back: whose address, which secrets masked, cut-short marks.
"""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from serving import (
    ServerProcess,
    StartServer,
    http_request,
    read_all,
    read_response,
    write_module,
)

from microback.server import logs
from microback.server.access_log import access_logger, log_access

REQUEST = ("10.0.0.7", "GET", "/notes?page=2\x1b[31m", "HTTP/1.1", 200, 512, 0.0031, "5f3a-2a")


@pytest.fixture
def stderr() -> Iterator[io.StringIO]:
    """A stream for ``configure_logging``; the loggers are put back as they were after."""
    root = logging.getLogger("microback")
    saved = (list(root.handlers), root.level, root.propagate, logs._installed)
    stream = io.StringIO()
    yield stream
    if logs._installed is not None:
        logs._installed.flush()
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    logs._installed = saved[3]


def _lines(stream: io.StringIO) -> list[str]:
    assert logs._installed is not None
    logs._installed.flush()
    return stream.getvalue().splitlines()


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("access_format", ["text", "json"])
@pytest.mark.parametrize("incomplete", [None, "timeout"])
def test_short_path_writes_what_logging_writes(
    stderr: io.StringIO, access_format: str, incomplete: str | None
) -> None:
    logs.configure_logging("info", access_format, stderr)
    assert logs.access_handler() is logs._installed
    fields = {"peer": "10.0.0.1", "incomplete": incomplete}

    log_access(*REQUEST, **fields)  # the short path
    recorder = Recorder()
    access_logger.addHandler(recorder)  # someone wants the records: through logging
    try:
        assert logs.access_handler() is None
        log_access(*REQUEST, **fields)
    finally:
        access_logger.removeHandler(recorder)

    short, through_logging = _lines(stderr)
    if access_format == "json":
        first, second = json.loads(short), json.loads(through_logging)
        assert first.pop("time")[:10] == second.pop("time")[:10]
        assert first == second
        assert first["path"] == "/notes?page=2\\x1b[31m"
        assert (first["client"], first["peer"]) == ("10.0.0.7", "10.0.0.1")
        assert first["incomplete"] == incomplete
    else:
        stamp = re.compile(r"^\S+ \S+ \S+ ")  # the time, to the second
        assert stamp.sub("", short) == stamp.sub("", through_logging)
        mark, reason = ("!", " incomplete=timeout") if incomplete else ("", "")
        assert short.endswith(
            ' INFO microback.access: 10.0.0.7 "GET /notes?page=2\\x1b[31m HTTP/1.1" '
            f"200{mark} 512 3.1ms 5f3a-2a{reason}"
        )
    (record,) = recorder.records
    assert (record.status, record.bytes, record.request_id) == (200, 512, "5f3a-2a")
    assert (record.peer, record.incomplete) == ("10.0.0.1", incomplete)


def test_secret_params_of_configure_logging_mask_query_values(stderr: io.StringIO) -> None:
    logs.configure_logging("info", "text", stderr, secret_params=["sid"])
    try:
        log_access("10.0.0.7", "GET", "/a?sid=1&token=2", "HTTP/1.1", 200, 1, 0.001, "r-1")
    finally:
        logs.configure_logging("info", "text", stderr)  # the default words again

    (line,) = _lines(stderr)
    assert '"GET /a?sid=***&token=2 HTTP/1.1"' in line


def test_buffered_lines_come_before_the_next_record(stderr: io.StringIO) -> None:
    logs.configure_logging("info", stream=stderr)

    log_access(*REQUEST)
    assert stderr.getvalue() == ""  # buffered
    logging.getLogger("microback.server").warning("something else")

    first, second = stderr.getvalue().splitlines()
    assert "microback.access" in first
    assert second.endswith("WARNING microback.server: something else")


def test_warning_level_turns_access_lines_off(stderr: io.StringIO) -> None:
    logs.configure_logging("warning", stream=stderr)

    log_access(*REQUEST)

    assert _lines(stderr) == []


# --- Through a real server ----------------------------------------------------------------------

APP = """
    import gevent

    from microback import App, Response

    app = App(secret_key="integration-test-secret-key-0123456789", trusted_proxies=["127.0.0.1"])


    @app.get("/whoami")
    def whoami(request):
        return {"remote_addr": request.remote_addr}


    @app.get("/big")
    def big(request):  # 256 MiB: more than any socket buffer holds
        return Response(b"x" * 65536 for _ in range(4096))


    @app.get("/drip")
    def drip(request):  # a piece every 50 ms for 20 s
        def pieces():
            for _ in range(400):
                yield b"x" * 1024
                gevent.sleep(0.05)

        return Response(pieces())


    @app.get("/fails-midway")
    def fails_midway(request):
        def pieces():
            yield b"the first piece"
            raise RuntimeError("failed while streaming")

        return Response(pieces())


    def raw(environ, start_response):  # a plain WSGI app whose exception reaches the server
        raise RuntimeError("the raw app failed")
"""


#: The same app behind a proxy that connects over a Unix socket.
UNIX_PROXY_APP = """
    from microback import App

    app = App(secret_key="integration-test-secret-key-0123456789", trusted_proxies=["unix"])


    @app.get("/whoami")
    def whoami(request):
        return {"remote_addr": request.remote_addr}
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_module(tmp_path, "linesapp.py", APP)
    return tmp_path


def _json_line(server: ServerProcess, path_pattern: str) -> dict[str, Any]:
    """The JSON access line whose path matches *path_pattern* (waiting for it)."""
    line = server.wait_for_line(rf'"path": "{path_pattern}"').string
    entry: dict[str, Any] = json.loads(line)
    return entry


# -- whose address


def test_json_line_has_the_forwarded_client_and_the_proxy_as_peer(
    start_server: StartServer, app_dir: Path
) -> None:
    server = start_server("linesapp:app", "--access-log-format", "json")

    response = requests.get(
        server.url + "/whoami", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
    )
    direct = requests.get(server.url + "/whoami?direct=1", timeout=10)

    assert response.json() == {"remote_addr": "203.0.113.9"}
    forwarded_line = _json_line(server, "/whoami")
    assert (forwarded_line["client"], forwarded_line["peer"]) == ("203.0.113.9", "127.0.0.1")
    assert direct.json() == {"remote_addr": "127.0.0.1"}
    direct_line = _json_line(server, r"/whoami\?direct=1")
    assert (direct_line["client"], direct_line["peer"]) == ("127.0.0.1", "127.0.0.1")


def test_behind_a_proxy_on_a_unix_socket_the_client_comes_from_its_header(
    start_server: StartServer, app_dir: Path
) -> None:
    write_module(app_dir, "unixproxyapp.py", UNIX_PROXY_APP)
    path = app_dir / "app.sock"
    server = start_server(
        "unixproxyapp:app", "--bind", f"unix:{path}", "--access-log-format", "json"
    )

    answers = []
    for forwarded in ("203.0.113.9", "198.51.100.7"):
        with socket.socket(socket.AF_UNIX) as proxy:
            proxy.settimeout(10)
            proxy.connect(str(path))
            http_request(proxy, f"/whoami?as={forwarded}", f"X-Forwarded-For: {forwarded}\r\n")
            answers.append(json.loads(read_response(proxy).partition(b"\r\n\r\n")[2]))

    assert answers == [{"remote_addr": "203.0.113.9"}, {"remote_addr": "198.51.100.7"}]
    line = _json_line(server, r"/whoami\?as=198.51.100.7")
    assert (line["client"], line["peer"]) == ("198.51.100.7", "")


# -- secrets in query strings


def test_secret_looking_query_values_are_masked_in_access_lines(
    start_server: StartServer, app_dir: Path
) -> None:
    server = start_server("linesapp:app")
    query = (
        "page=2&token=mbt_s3cr3t&password=hunter2&access_token=at_qz&apiKey=key_qz&client_secret=cs_qz"
        "&X-Amz-Signature=sig_qz&code=code_qz&keyword=shown"
    )

    assert requests.get(f"{server.url}/whoami?{query}", timeout=10).ok

    line = server.wait_for_line(r"GET /whoami\?").string
    assert (
        "/whoami?page=2&token=***&password=***&access_token=***&apiKey=***&client_secret=***"
        "&X-Amz-Signature=***&code=***&keyword=shown HTTP/1.1" in line
    )
    # Values with letters past f: a request id in the log is hex and cannot contain them.
    for secret in ("mbt_s3cr3t", "hunter2", "at_qz", "key_qz", "cs_qz", "sig_qz", "code_qz"):
        assert secret not in server.log


def test_secret_query_values_are_masked_in_the_server_error_log(
    start_server: StartServer, app_dir: Path
) -> None:
    server = start_server("linesapp:raw")

    assert (
        requests.get(f"{server.url}/report?password=hunter2&id=7", timeout=10).status_code == 500
    )

    server.wait_for_line("RuntimeError: the raw app failed")
    assert "error in the WSGI application while serving 'GET /report?password=***&id=7'" in (
        server.log
    )
    assert "hunter2" not in server.log


def test_secret_params_option_sets_the_words(start_server: StartServer, app_dir: Path) -> None:
    server = start_server("linesapp:app", "--secret-params", "sid,otp")

    assert requests.get(f"{server.url}/whoami?sid=abc&userOtp=123&token=shown", timeout=10).ok

    line = server.wait_for_line(r"GET /whoami\?").string
    assert "/whoami?sid=***&userOtp=***&token=shown HTTP/1.1" in line


def test_bad_secret_params_option_is_a_usage_error(start_server: StartServer) -> None:
    from serving import run_microback

    result = run_microback("serve", "app:app", "--secret-params", "api-key", cwd=Path("."))

    assert result.returncode == 2
    assert "letters and digits only (e.g. token), not 'api-key'" in result.stderr


# -- responses cut short


def test_a_whole_response_is_not_marked(start_server: StartServer, app_dir: Path) -> None:
    server = start_server("linesapp:app", "--access-log-format", "json")

    assert requests.get(server.url + "/whoami", timeout=10).ok

    assert _json_line(server, "/whoami")["incomplete"] is None


def test_a_client_that_stops_reading_is_logged_incomplete_timeout(
    start_server: StartServer, app_dir: Path
) -> None:
    server = start_server("linesapp:app", "--body-timeout", "1", "--access-log-format", "json")

    with server.connect() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        http_request(client, "/big")
        client.recv(1024)  # the head has come; read nothing more
        line = _json_line(server, "/big")

    assert line["status"] == 200
    assert line["incomplete"] == "timeout"
    assert 0 < line["bytes"] < 4096 * 65536


def test_a_client_that_goes_away_is_logged_incomplete_client_disconnect(
    start_server: StartServer, app_dir: Path
) -> None:
    server = start_server("linesapp:app")

    with server.connect() as client:
        http_request(client, "/drip")
        assert client.recv(1024).startswith(b"HTTP/1.1 200 OK")
        # Close with a reset (SO_LINGER 0): the server's next send fails at once.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    line = server.wait_for_line(r'"GET /drip HTTP/1.1"').string
    assert re.search(
        r'"GET /drip HTTP/1.1" 200! \d+ [\d.]+ms \S+ incomplete=client-disconnect$', line
    )


def test_an_app_that_fails_mid_stream_is_logged_incomplete_app_error(
    start_server: StartServer, app_dir: Path
) -> None:
    server = start_server("linesapp:app", "--access-log-format", "json")

    with server.connect() as client:
        http_request(client, "/fails-midway")
        answer = read_all(client)

    assert answer.startswith(b"HTTP/1.1 200 OK") and b"the first piece" in answer
    assert b"0\r\n\r\n" not in answer  # the chunked body never ended
    line = _json_line(server, "/fails-midway")
    assert (line["status"], line["incomplete"]) == (200, "app-error")


def test_a_response_cut_off_by_the_graceful_timeout_is_logged_incomplete_shutdown(
    start_server: StartServer, app_dir: Path
) -> None:
    server = start_server("linesapp:app", "--graceful-timeout", "0.5")

    with server.connect() as client:
        http_request(client, "/drip")
        assert client.recv(1024).startswith(b"HTTP/1.1 200 OK")
        server.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and client.recv(65536):
            pass
        assert server.wait() == 0

    line = server.wait_for_line(r'"GET /drip HTTP/1.1"').string
    assert re.search(r'"GET /drip HTTP/1.1" 200! \d+ [\d.]+ms \S+ incomplete=shutdown$', line)
