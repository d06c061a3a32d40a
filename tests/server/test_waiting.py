"""Slow clients cannot starve the others: slowloris, the app-concurrency cap, the file limit.

A connection still sending its head takes a place among the open connections (``--connections``,
10,000 by default) but no place in the application (``--max-concurrent-requests``), and the
header deadline cuts it off however steadily it dribbles. These tests run a real ``microback
serve`` on loopback and check what a client notices: its request is answered while 2,000
slowloris sockets are open, the slow ones get 408 at their deadline, a request over the app
cap waits and then succeeds, and a server whose file limit is too small says so and serves.
"""

from __future__ import annotations

import contextlib
import re
import resource
import select
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serving import (
    ServerProcess,
    StartServer,
    exchange,
    free_port,
    http_request,
    read_all,
    write_module,
)

SLOW_SOCKETS = 2000
#: The header timeout the slowloris test gives the server, and how often each slow socket
#: sends one more byte: far more often, so only a deadline on the whole head can end them.
HEADER_TIMEOUT = 2.0
DRIBBLE_EVERY = 0.25
PARTIAL_HEAD = b"GET /slowloris HTTP/1.1\r\nHost: t\r\nX-Slow: "

#: A raw WSGI app: "/" answers at once; "/slow" sleeps, printing a line when it starts;
#: "/upload" reads the whole request body first.
APP = """
    import sys

    import gevent


    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            print("slow request started", file=sys.stderr, flush=True)
            gevent.sleep(float(environ["QUERY_STRING"] or "1"))
        if environ["PATH_INFO"] == "/upload":
            environ["wsgi.input"].read()
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_module(tmp_path, "slowapp.py", APP)
    return tmp_path


@pytest.fixture
def open_files() -> Iterator[None]:
    """Let this test process hold the slow sockets: raise its soft open file limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = SLOW_SOCKETS + 500
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the open file limit ({hard}) is too small for {SLOW_SOCKETS} sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _get(server: ServerProcess, path: str, timeout: float = 10) -> bytes:
    request = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
    return exchange(server, request, timeout=timeout)


def _answered(sock: socket.socket) -> bool:
    """Whether the server has sent anything (or closed) on *sock*, without waiting."""
    poll = select.poll()  # not select(): these descriptors go above 1024
    poll.register(sock, select.POLLIN)
    return bool(poll.poll(0))


class Slowloris:
    """Sockets that send a partial request head, then one more byte every DRIBBLE_EVERY s.

    Dribbling stops on a socket once the server has answered it, and for all of them when
    :meth:`stop` is called or after *most_seconds* (bounded, whatever the server does).
    """

    def __init__(self, server: ServerProcess, count: int, most_seconds: float = 15.0) -> None:
        self.sockets: list[socket.socket] = []
        for _ in range(count):
            sock = server.connect()
            sock.sendall(PARTIAL_HEAD)
            self.sockets.append(sock)
        self._end = time.monotonic() + most_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._dribble, daemon=True)
        self._thread.start()

    def _dribble(self) -> None:
        while not self._stop.wait(DRIBBLE_EVERY) and time.monotonic() < self._end:
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # cut off already
                    if not _answered(sock):
                        sock.send(b"v")

    def still_waiting(self) -> int:
        """How many slow sockets the server has neither answered nor closed yet."""
        return sum(not _answered(sock) for sock in self.sockets)

    def answers(self, timeout: float) -> list[bytes]:
        """Everything the server sends on each socket until it closes it (or *timeout*)."""
        return self.answers_of(self.sockets, timeout)

    @staticmethod
    def answers_of(sockets: list[socket.socket], timeout: float) -> list[bytes]:
        """Everything the server sends on each of *sockets* until it closes it (or *timeout*)."""
        received = {sock: b"" for sock in sockets}
        selector = selectors.DefaultSelector()
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        open_ = len(sockets)
        while open_ and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                received[sock] += data
                if not data:
                    selector.unregister(sock)
                    open_ -= 1
        selector.close()
        return [received[sock] for sock in sockets]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            sock.close()


def test_2000_slowloris_sockets_do_not_starve_normal_requests(
    start_server: StartServer, app_dir: Path, open_files: None
) -> None:
    # Without the 4,000 lines of refusals and access lines (and so without the "listening
    # on" line: the helper waits for the port to accept instead).
    server = start_server(
        "slowapp:app",
        "--header-timeout",
        str(HEADER_TIMEOUT),
        "--log-level",
        "warning",
        port=free_port(),
    )
    attack = Slowloris(server, SLOW_SOCKETS)
    try:
        answers = [_get(server, f"/normal/{n}") for n in range(20)]
        # Answered while every slow socket was still open and waiting: the normal requests
        # did not have to wait for the slow ones to be cut off.
        waiting = attack.still_waiting()
        slow_answers = attack.answers(timeout=HEADER_TIMEOUT + 10)
    finally:
        attack.stop()

    assert [_status(answer) for answer in answers] == [200] * 20
    assert waiting == SLOW_SOCKETS
    # Each slow socket sent a byte every 0.25 s, never silent for the 2 s timeout, and was cut
    # off anyway: the deadline is on the whole head.
    assert [_status(answer) for answer in slow_answers] == [408] * SLOW_SOCKETS
    assert _status(_get(server, "/after")) == 200


def test_header_deadline_ends_a_head_sent_a_byte_at_a_time(
    start_server: StartServer, app_dir: Path
) -> None:
    server = start_server("slowapp:app", "--header-timeout", "1")
    with server.connect() as sock:
        sock.sendall(PARTIAL_HEAD)
        started = time.monotonic()
        sent = 0
        while not _answered(sock) and time.monotonic() - started < 10:
            sock.sendall(b"v")  # one byte every 0.3 s: never a second of silence
            sent += 1
            time.sleep(0.3)
        sock.settimeout(10)
        answer = read_all(sock)

    assert _status(answer) == 408
    assert b"request head not received within 1 s" in answer
    assert sent < 10  # cut off near the 1 s deadline, not after 10 s of dribbling


def test_requests_over_the_app_cap_wait_for_a_slot(
    start_server: StartServer, app_dir: Path
) -> None:
    server = start_server("slowapp:app", "--max-concurrent-requests", "2")
    sockets = [server.connect() for _ in range(3)]
    try:
        for sock in sockets[:2]:
            http_request(sock, "/slow?1", headers="Connection: close\r\n")
        server.wait_for_line("slow request started")
        _wait_for_count(lambda: _count(server, "slow request started"), 2)

        # The third request is read, but the app does not see it while both slots are busy;
        # the connection stays open, waiting, and is served once a slot frees.
        http_request(sockets[2], "/slow?0", headers="Connection: close\r\n")
        sockets[2].settimeout(0.5)
        with pytest.raises(TimeoutError):
            sockets[2].recv(1)
        assert _count(server, "slow request started") == 2

        for sock in sockets:
            sock.settimeout(10)
        answers = [read_all(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()

    assert [_status(answer) for answer in answers] == [200, 200, 200]
    _wait_for_count(lambda: _count(server, "slow request started"), 3)  # the log lags a little


def test_slow_heads_take_no_app_slot(start_server: StartServer, app_dir: Path) -> None:
    # With a single slot, clients dribbling heads still leave it to a complete request.
    server = start_server("slowapp:app", "--max-concurrent-requests", "1")
    slow = [server.connect() for _ in range(5)]
    try:
        for sock in slow:
            sock.sendall(PARTIAL_HEAD)
        assert _status(_get(server, "/normal")) == 200
    finally:
        for sock in slow:
            sock.close()


def test_connections_are_fitted_to_the_open_file_limit(
    app_dir: Path, limit_files: Callable[[int, int], ServerProcess]
) -> None:
    server = limit_files(300, 300)

    assert re.search(
        r"WARNING microback\.server: at most 172 connections instead of 10000: "
        r"the open file limit is 300",
        server.log,
    )
    assert _status(_get(server, "/")) == 200


def test_soft_open_file_limit_is_raised_to_the_hard_one(
    app_dir: Path, limit_files: Callable[[int, int], ServerProcess]
) -> None:
    if not Path("/proc/self/limits").exists():
        pytest.skip("reads the server's limits from /proc (Linux)")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1000:
        pytest.skip(f"the hard open file limit ({hard}) leaves nothing to raise")
    hard = 1000 if hard == resource.RLIM_INFINITY else min(hard, 20000)
    server = limit_files(256, hard)

    assert _open_files_limit(server.process.pid) == (hard, hard)
    assert "connections instead of" not in server.log
    assert _status(_get(server, "/")) == 200


@pytest.fixture
def limit_files(app_dir: Path) -> Iterator[Callable[[int, int], ServerProcess]]:
    """Start ``microback serve`` with the given soft and hard open file limits."""
    started: list[ServerProcess] = []

    def start(soft: int, hard: int) -> ServerProcess:
        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

        server = ServerProcess(["--port", "0", "slowapp:app"], app_dir, preexec_fn=preexec)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def _open_files_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no 'Max open files' line")


def _count(server: ServerProcess, text: str) -> int:
    return sum(text in line for line in list(server.lines))


def _wait_for_count(count: Callable[[], int], wanted: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while count() < wanted:
        assert time.monotonic() < deadline, f"only {count()} of {wanted} seen"
        time.sleep(0.01)


def test_at_the_connection_cap_slowloris_heads_make_room_for_complete_requests(
    start_server: StartServer, app_dir: Path, open_files: None
) -> None:
    # 2,000 slow sockets against a cap of 1,000 connections: half of them wait in the accept
    # queue, and the header timeout (30 s) would free no place within this test. A client
    # that sends a whole request in one write must still be answered within a second: at
    # the cap, the heads that progress least are closed first, for the connections waiting.
    server = start_server(
        "slowapp:app",
        "--connections",
        "1000",
        "--header-timeout",
        "30",
        "--log-level",
        "warning",
        port=free_port(),
    )
    attack = Slowloris(server, SLOW_SOCKETS, most_seconds=40)
    try:
        took = []
        for n in range(100):
            started = time.monotonic()
            answer = _get(server, f"/normal/{n}", timeout=10)
            took.append(time.monotonic() - started)
            assert _status(answer) == 200
        slow_answers = attack.answers(timeout=0.5)
    finally:
        attack.stop()

    # Issue 11 asks for a p99 under 1 s. The first request waits behind the ~1,000 slow
    # sockets queued before it (about 0.5 s on a loaded 2-core host); the others, not at all.
    assert sorted(took)[98] < 1.0, took
    evicted = [answer for answer in slow_answers if answer]
    assert evicted  # the room was made among the slow heads...
    assert {_status(answer) for answer in evicted} == {503}  # ...and they were told why
    assert b"too slowly" in evicted[0]


SLOW_BODIES = 1010
UPLOAD_HEAD = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"


def test_bodies_sent_a_byte_at_a_time_neither_hold_app_slots_nor_last(
    start_server: StartServer, app_dir: Path, open_files: None
) -> None:
    # As issue 11 measured: more slow uploads than --max-concurrent-requests (1,000), each
    # sending a byte now and then (1 byte every 10 s there; here one byte, then silence well
    # within the 30 s body timeout). Before, they took every app slot and no other request
    # was answered; now a body is read before its request takes a slot, and one arriving
    # slower than --min-body-rate (240 bytes/s) after --body-rate-grace (here 3 s) gets 408.
    server = start_server(
        "slowapp:app", "--body-rate-grace", "3", "--log-level", "warning", port=free_port()
    )
    uploads = []
    for _ in range(SLOW_BODIES):
        sock = server.connect()
        sock.sendall(UPLOAD_HEAD + b"x")
        uploads.append(sock)
    sent = time.monotonic()
    try:
        took = []
        while time.monotonic() - sent < 2:  # within the grace: every upload is still open
            started = time.monotonic()
            answer = _get(server, "/normal", timeout=5)
            took.append(time.monotonic() - started)
            assert _status(answer) == 200
        still_open = sum(not _answered(sock) for sock in uploads)
        answers = Slowloris.answers_of(uploads, timeout=20)
        cut_off_after = time.monotonic() - sent
    finally:
        for sock in uploads:
            sock.close()

    assert len(took) >= 10
    assert still_open == SLOW_BODIES
    assert {_status(answer) for answer in answers} == {408}
    assert b"slower than the minimum of 240 bytes/s" in answers[0]
    assert cut_off_after < 20  # at the grace, not at the 30 s body timeout


def _send_body(sock: socket.socket, size: int, piece: int, every: float) -> bytes:
    """POST a body of *size* bytes, *piece* bytes every *every* seconds; return the answer."""
    sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
    sent = 0
    with contextlib.suppress(OSError):  # a connection cut off mid-body
        while sent < size and not _answered(sock):
            sock.sendall(b"x" * min(piece, size - sent))
            sent += piece
            time.sleep(every)
    return read_all(sock)


def test_a_body_must_keep_the_minimum_rate_once_the_grace_has_passed(
    start_server: StartServer, app_dir: Path
) -> None:
    # Both send a byte often enough for the 30 s body timeout, which is per read.
    server = start_server("slowapp:app", "--min-body-rate", "1000", "--body-rate-grace", "1")
    with server.connect() as fast_enough, server.connect() as too_slow:
        started = time.monotonic()
        slow_answer = _send_body(too_slow, 10_000, 100, 0.2)  # 500 bytes/s
        slow_took = time.monotonic() - started
        fast_answer = _send_body(fast_enough, 4_000, 400, 0.2)  # 2,000 bytes/s, for 2 s

    assert _status(slow_answer) == 408
    assert b"slower than the minimum of 1000 bytes/s" in slow_answer
    assert slow_took < 10  # at the 1 s grace, or a little after: not at the body timeout
    assert _status(fast_answer) == 200
