"""The listening sockets: TCP_NODELAY on every connection, ``--bind`` addresses (TCP, IPv6,
Unix), and bind errors that say what to do."""

from __future__ import annotations

import json
import re
import signal
import socket
from pathlib import Path

import pytest
import requests
from serving import (
    RAW_APP,
    StartServer,
    http_request,
    read_response,
    run_microback,
    write_module,
)

from microback.server.listener import (
    Address,
    ListenError,
    bind_listener,
    bind_unix,
    parse_bind,
    remove_unix_socket,
)


def test_accepted_connections_have_tcp_nodelay() -> None:
    # Without it, each keep-alive request after the first stalls ~40 ms (Nagle + delayed ACK):
    # pywsgi sends the headers and the body in two writes.
    with bind_listener("127.0.0.1", 0) as listener:
        port = listener.getsockname()[1]
        listener.setblocking(True)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_port_in_use_is_one_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(ListenError) as error:
            bind_listener("127.0.0.1", port)

    assert str(error.value) == f"cannot listen on 127.0.0.1:{port}: address already in use"


def test_ipv6_address_is_written_in_brackets() -> None:
    try:
        listener = bind_listener("::1", 0)
    except ListenError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with listener:
        port = listener.getsockname()[1]

        with pytest.raises(ListenError) as error:
            bind_listener("::1", port)

    assert str(error.value) == f"cannot listen on [::1]:{port}: address already in use"


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:8000", Address(host="127.0.0.1", port=8000)),
        ("0.0.0.0:0", Address(host="0.0.0.0", port=0)),
        ("localhost:65535", Address(host="localhost", port=65535)),
        ("[::1]:8443", Address(host="::1", port=8443)),
        ("unix:/run/app.sock", Address(path="/run/app.sock")),
        ("unix:relative.sock", Address(path="relative.sock")),
    ],
)
def test_bind_addresses(text: str, address: Address) -> None:
    parsed = parse_bind(text)

    assert parsed == address
    assert str(parsed) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8000", "'8000' has no port; use HOST:PORT, [IPv6]:PORT or unix:PATH"),
        (":8000", "':8000' has no host; use 0.0.0.0:PORT for every interface"),
        ("::1:8000", "put an IPv6 address in brackets, as in [::1]:8000"),
        ("[::1]8000", "write IPv6 as [::1]:8000"),
        ("host:http", "the port must be a number from 0 to 65535"),
        ("host:70000", "the port must be a number from 0 to 65535"),
        ("unix:", "'unix:' needs a path"),
    ],
)
def test_bad_bind_addresses_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_bind(text)


def test_unix_socket_left_by_a_dead_server_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    bind_unix(path).close()  # closed without removing the file, as after kill -9

    with bind_unix(path) as listener:
        assert listener.getsockname() == path
        with pytest.raises(ListenError, match="address already in use"):
            bind_unix(path)  # this one is live
    remove_unix_socket(Address(path=path))
    assert not Path(path).exists()


def test_a_file_in_the_way_of_a_unix_socket_is_kept(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")

    with pytest.raises(ListenError) as error:
        bind_unix(str(tmp_path / "notes.txt"))

    assert str(error.value).endswith("a file that is not a socket is in the way")
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    with pytest.raises(ListenError, match="its directory does not exist"):
        bind_unix(str(tmp_path / "no" / "app.sock"))


def test_serves_on_a_unix_socket_and_other_addresses(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "rawapp.py", RAW_APP)
    path = tmp_path / "app.sock"
    extra = ["--bind", "[::1]:0"] if _has_ipv6() else []
    server = start_server("rawapp:app", "--bind", f"unix:{path}", *extra)

    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(str(path))
        http_request(client, "/environ")
        head, _, body = read_response(client).partition(b"\r\n\r\n")
    environ = json.loads(body)
    tcp = requests.get(server.url + "/", timeout=10)
    if extra:
        port = server.wait_for_line(r"listening on http://\[::1\]:(\d+)").group(1)
        assert requests.get(f"http://[::1]:{port}/", timeout=10).ok
    server.send_signal(signal.SIGTERM)

    assert head.startswith(b"HTTP/1.1 200 OK")
    assert environ["REMOTE_ADDR"] == "" and environ["SERVER_NAME"] == "localhost"
    assert tcp.ok
    assert f"listening on unix:{path}" in server.log
    assert server.wait() == 0
    assert not path.exists()  # removed by the server that made it


def test_short_options_for_workers_and_bind_as_gunicorn_users_type_them(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "rawapp.py", RAW_APP)
    path = tmp_path / "short.sock"
    server = start_server("rawapp:app", "-w", "2", "-b", f"unix:{path}")

    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(str(path))
        http_request(client, "/", "Connection: close\r\n")
        answer = read_response(client)

    assert answer.startswith(b"HTTP/1.1 200 OK")
    # The socket accepts before its line has been read from the server's stderr: wait for it.
    server.wait_for_line(f"listening on unix:{re.escape(str(path))}")
    server.wait_for_line(r"2 worker\(s\) serving")


def test_bad_bind_option_is_a_usage_error(tmp_path: Path) -> None:
    result = run_microback("serve", "app:app", "--bind", "8000", cwd=tmp_path)

    assert result.returncode == 2
    assert "'8000' has no port; use HOST:PORT, [IPv6]:PORT or unix:PATH" in result.stderr


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
