"""Limits and slow clients: each limit is answered with its status and the connection closed.

The shared server runs with small limits (serving.SHARED_LIMITS): a 1024-byte request target,
20 header fields, 4096 bytes of headers, a 10000-byte body, 1 s to send a head, 1 s of silence
while sending a body, 1.5 s of keep-alive idleness.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

from serving import Reader, ServerProcess, exchange, read_all


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_request_target_over_the_limit_is_414(http_server: ServerProcess) -> None:
    target = "/limits/" + "a" * 1100

    answer = exchange(http_server, f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())

    assert _status(answer) == 414
    assert b"longer than 1024 bytes" in answer


def test_request_target_at_the_limit_is_served(http_server: ServerProcess) -> None:
    target = "/limits/" + "a" * (1024 - len("/limits/"))

    answer = exchange(
        http_server, f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
    )

    assert _status(answer) == 200


def test_too_many_header_fields_is_431(http_server: ServerProcess) -> None:
    headers = "".join(f"X-H{i}: {i}\r\n" for i in range(20))  # with Host: 21

    answer = exchange(
        http_server, f"GET /limits/count HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode()
    )

    assert _status(answer) == 431
    assert b"more than 20 header fields" in answer


def test_headers_over_the_total_size_is_431(http_server: ServerProcess) -> None:
    headers = "".join(f"X-H{i}: {'v' * 1000}\r\n" for i in range(5))  # each fine, together not

    answer = exchange(
        http_server, f"GET /limits/size HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode()
    )

    assert _status(answer) == 431


def test_one_endless_header_line_is_cut_off(http_server: ServerProcess) -> None:
    # The parser holds an unfinished header itself; the server bounds what it feeds it.
    with http_server.connect() as sock:
        sock.sendall(b"GET /limits/endless HTTP/1.1\r\nHost: t\r\nX-Big: ")
        try:
            for _ in range(40):
                sock.sendall(b"v" * 8192)
        except OSError:
            pass  # the server closed while we were still sending
        answer = read_all_tolerant(sock)

    assert _status(answer) == 431


def test_content_length_over_the_limit_is_413_before_the_body_is_read(
    http_server: ServerProcess,
) -> None:
    with http_server.connect() as sock:
        # Expect: 100-continue: the client sends no body unless told to, and is not told to.
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10001\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        answer = read_all(sock)

    assert _status(answer) == 413
    assert b"100 Continue" not in answer


def test_chunked_body_over_the_limit_is_413(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(3):
                sock.sendall(b"1000\r\n" + b"x" * 4096 + b"\r\n")  # 12288 bytes in all
                time.sleep(0.05)
        except OSError:
            pass
        answer = read_all_tolerant(sock)

    assert _status(answer) == 413


def test_slow_body_is_cut_off_with_408(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        answer = read_all(sock)  # the server stops waiting after the 1 s body timeout

    assert _status(answer) == 408


def test_idle_keep_alive_connection_is_closed(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(b"GET /limits/idle HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, _ = Reader(sock).response()
        sock.settimeout(10)

        assert status == 200
        assert sock.recv(1) == b""  # closed silently after 1.5 s of idleness


def test_silent_connection_is_closed(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        assert sock.recv(1) == b""  # nothing sent: closed after the 1 s header timeout


def test_slowloris_clients_are_cut_off_while_others_are_served(
    http_server: ServerProcess,
) -> None:
    # A few clients each dribble a header a byte at a time: the header deadline (1 s, for the
    # whole head) cuts them off with 408 however steadily they send, and a normal request made
    # meanwhile is answered.
    slow = [http_server.connect() for _ in range(5)]
    stop = threading.Event()

    def dribble() -> None:
        for sock in slow:
            sock.sendall(b"GET /limits/slowloris HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        while not stop.wait(0.1):
            for sock in slow:
                with contextlib.suppress(OSError):  # cut off already
                    sock.sendall(b"v")

    dribbler = threading.Thread(target=dribble, daemon=True)
    dribbler.start()
    try:
        time.sleep(0.3)  # the dribblers are mid-head
        normal = exchange(
            http_server, b"GET /limits/normal HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        answers = [read_all_tolerant(sock) for sock in slow]
    finally:
        stop.set()
        dribbler.join()
        for sock in slow:
            sock.close()

    assert _status(normal) == 200
    assert [_status(answer) for answer in answers] == [408] * 5


def test_json_access_line_carries_the_client_request_id(http_server: ServerProcess) -> None:
    exchange(
        http_server,
        b"GET /limits/json-log HTTP/1.1\r\nHost: t\r\nX-Request-ID: abc-123\r\n"
        b"Connection: close\r\n\r\n",
    )

    line = http_server.wait_for_line(r'"request_id": "abc-123"').string
    entry = json.loads(line)

    assert entry["path"] == "/limits/json-log"
    assert entry["status"] == 200
    assert entry["protocol"] == "HTTP/1.1"
    assert entry["client"] == "127.0.0.1"
    assert isinstance(entry["duration_ms"], float)


def read_all_tolerant(sock: socket.socket) -> bytes:
    """Read until close; a reset after the response (we kept sending) ends the read too."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)
