"""``--certfile``/``--keyfile``: HTTPS with a certificate made for the test by ``openssl``.

The server runs as a master with one worker, so the TLS context made in the master before the
fork is the one each worker uses.
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from serving import (
    RAW_APP,
    ServerProcess,
    exchange,
    http_request,
    read_response,
    run_microback,
    self_signed_certificate,
    stderr_lines,
    write_module,
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``server.pem`` and ``server.key``, with ``other.pem`` and ``other.key`` beside them."""
    directory = tmp_path_factory.mktemp("certificate")
    self_signed_certificate(directory, "other", "127.0.0.1")
    return self_signed_certificate(directory, "server", "127.0.0.1")


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("tls_server")
    write_module(directory, "rawapp.py", RAW_APP)
    cert, key = certificate
    # At debug level: a refused request's reason is logged there (test_plain_http_...).
    server = ServerProcess(
        ["--port", "0", "rawapp:app", "--workers", "1", "--certfile", str(cert),
         "--keyfile", str(key), "--header-timeout", "1", "--log-level", "debug"],
        directory,
    )  # fmt: skip
    yield server
    server.close()


def _client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def test_https_requests_on_one_connection(
    tls_server: ServerProcess, certificate: tuple[Path, Path]
) -> None:
    with requests.Session() as session:
        url = f"https://127.0.0.1:{tls_server.port}"
        first = session.get(url + "/environ", verify=str(certificate[0]), timeout=10)
        second = session.get(url + "/echo?x=1", verify=str(certificate[0]), timeout=10)

    assert first.status_code == 200 and second.status_code == 200
    environ = first.json()
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["SERVER_PORT"] == str(tls_server.port)
    assert environ["wsgi.multiprocess"] is True
    assert second.json()["query"] == "x=1"
    assert f"listening on https://127.0.0.1:{tls_server.port}" in tls_server.log


def test_plain_http_to_the_tls_port_is_told_so(tls_server: ServerProcess) -> None:
    answer = exchange(tls_server, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"plain HTTP sent to the HTTPS port; use https://" in answer
    assert b"Connection: close" in answer
    tls_server.wait_for_line("refused: 400 plain HTTP sent to the HTTPS port")
    assert "Traceback" not in tls_server.log


def test_failed_handshakes_are_closed_quietly(
    tls_server: ServerProcess, certificate: tuple[Path, Path]
) -> None:
    # A handshake record full of junk, and a client that does not trust the certificate.
    with tls_server.connect() as junk:
        junk.sendall(b"\x16\x03\x01\x00\x05junk!" + b"\x00" * 100)
        answer = _until_closed(junk)
    assert answer[:1] in (b"", b"\x15")  # nothing, or a TLS alert record
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(f"https://127.0.0.1:{tls_server.port}/", timeout=10)
    with tls_server.connect() as silent:  # connects, never says a thing: the header timeout
        silent.settimeout(10)
        assert silent.recv(1) == b""

    assert "Traceback" not in tls_server.log
    assert requests.get(
        f"https://127.0.0.1:{tls_server.port}/", verify=str(certificate[0]), timeout=10
    ).ok


def test_a_stopping_server_answers_the_next_request_on_an_idle_tls_connection(
    tls_server: ServerProcess, certificate: tuple[Path, Path]
) -> None:
    # Not closed under its client, who may be sending a request (test_drain.py), but answered
    # with Connection: close, and then closed.
    context = _client_context(certificate)
    with context.wrap_socket(tls_server.connect(), server_hostname="127.0.0.1") as idle:
        http_request(idle, "/")
        assert read_response(idle).startswith(b"HTTP/1.1 200 OK")

        tls_server.send_signal(signal.SIGTERM)
        tls_server.wait_for_line(r"stopping: waiting up to \S+ for 1 connection")  # the worker
        http_request(idle, "/")

        idle.settimeout(5)
        answer = read_response(idle)
        assert answer.startswith(b"HTTP/1.1 200 OK") and b"\r\nConnection: close\r\n" in answer
        assert idle.recv(1) == b""
    assert tls_server.wait(timeout=10) == 0
    assert "Traceback" not in tls_server.log


@pytest.mark.parametrize(
    ("certfile", "keyfile", "expected"),
    [
        (
            "missing.pem",
            "server.key",
            "cannot read the TLS certificate 'missing.pem': no such file",
        ),
        ("server.pem", "other.key", "the key 'other.key' does not belong to the certificate "),
        ("server.key", "server.key", "the TLS certificate 'server.key' is not a PEM certificate"),
        ("server.pem", None, "no PEM private key in 'server.pem'; give the key with --keyfile"),
        (None, "server.key", "--keyfile needs --certfile: give the certificate too"),
    ],
)
def test_bad_certificate_or_key_is_one_line(
    tmp_path: Path,
    certificate: tuple[Path, Path],
    certfile: str | None,
    keyfile: str | None,
    expected: str,
) -> None:
    for path in certificate[0].parent.iterdir():
        shutil.copy(path, tmp_path)
    options = []
    if certfile:
        options += ["--certfile", certfile]
    if keyfile:
        options += ["--keyfile", keyfile]

    result = run_microback("serve", "app:app", "--port", "0", *options, cwd=tmp_path)

    assert result.returncode == 2
    lines = stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith(f"microback: error: {expected}"), lines


def _until_closed(sock: socket.socket) -> bytes:
    """What the server sends before it closes (a reset counts as a close)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_a_full_tls_server_makes_room_among_slow_heads_again_and_again(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    # Each new client takes the last place and gets one by closing a slow head; over TLS the
    # closed head's read fails rather than ending, and the server must go on making room.
    write_module(tmp_path, "rawapp.py", RAW_APP)
    cert, key = certificate
    server = ServerProcess(
        ["--port", "0", "rawapp:app", "--certfile", str(cert), "--keyfile", str(key),
         "--connections", "3", "--header-timeout", "30"],
        tmp_path,
    )  # fmt: skip
    context = _client_context(certificate)
    slow = []
    try:
        for _ in range(3):
            sock = context.wrap_socket(server.connect(), server_hostname="127.0.0.1")
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(sock)
        for n in range(6):
            with context.wrap_socket(server.connect(), server_hostname="127.0.0.1") as sock:
                http_request(sock, f"/client/{n}", headers="Connection: close\r\n")
                assert read_response(sock).startswith(b"HTTP/1.1 200 OK"), n
            slow.append(context.wrap_socket(server.connect(), server_hostname="127.0.0.1"))
            slow[-1].sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    finally:
        for sock in slow:
            sock.close()
        server.close()
    assert "Traceback" not in server.log
