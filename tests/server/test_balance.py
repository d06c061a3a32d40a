"""Workers sharing a listening socket take equal shares of the connections
(microback/server/balance.py).

Two ``Server``s on one socket in this process stand for two workers: gevent wakes both on
each connection, in the same order every time, so without the board the first would take
them all. A real ``--workers 2`` shows the master's board reaching its workers.
"""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

import gevent
import gevent.socket
from serving import StartServer, http_request, read_response, write_module

from microback.server import Server
from microback.server.balance import AcceptBoard


def test_a_worker_holding_more_connections_steps_aside_for_one_holding_fewer() -> None:
    board = AcceptBoard(4)
    busy, idle = board.seat(board.take()), board.seat(board.take())
    assert busy is not None and idle is not None
    busy.present(60)
    idle.present(60)
    for _ in range(3):
        busy.opened()
    idle.opened()

    assert busy.should_step_aside()
    assert not idle.should_step_aside()

    idle.leave()  # stopping: it accepts no more, so nobody waits for it
    assert not busy.should_step_aside()
    idle.present(60)
    idle.present(-1)  # its presence ran out (a loop blocked past three beats)
    assert not busy.should_step_aside()
    idle.present(60)
    board.give_back(1)  # it exited: the master frees its slot
    assert not busy.should_step_aside()


def _named(name: bytes):  # type: ignore[no-untyped-def]
    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "1")])  # type: ignore[operator]
        return [name]

    return app


def test_two_workers_on_one_socket_take_turns_connection_by_connection() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    board = AcceptBoard(4)
    servers = []
    for name in (b"a", b"b"):
        seat = board.seat(board.take())
        assert seat is not None
        seat.present(60)
        # Each its own descriptor of the socket, as each forked worker has: one closing it
        # at its stop must not pull it from under the other's watcher.
        server = Server(_named(name), listener=listener.dup(), multiprocess=True, seat=seat)
        server.start()
        servers.append(server)
    clients = []
    try:
        served: Counter[bytes] = Counter()
        for _ in range(20):  # one at a time, each kept open
            client = gevent.socket.create_connection(servers[0].address, timeout=5)
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            served[client.recv(4096)[-1:]] += 1
            clients.append(client)

        assert served == {b"a": 10, b"b": 10}
        # A worker's connections that end no longer count: the next ones go to it.
        for client in clients[:]:
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            if client.recv(4096).endswith(b"a"):
                client.close()
                clients.remove(client)
        gevent.sleep(0.1)  # the closed connections' greenlets end
        for _ in range(10):
            client = gevent.socket.create_connection(servers[0].address, timeout=5)
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert client.recv(4096).endswith(b"a")
            clients.append(client)
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.stop(timeout=1)
        listener.close()


APP = """
    import os

    from microback import App

    app = App(secret_key="balance-test-secret-key-0123456789abcdef")


    @app.get("/pid")
    def pid(request):
        return {"pid": os.getpid()}
"""


def test_the_workers_of_microback_serve_hold_equal_shares(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "balanceapp.py", APP)
    server = start_server("balanceapp:app", "--workers", "2")
    clients = []
    try:
        served: Counter[bytes] = Counter()
        for _ in range(30):  # one at a time, each kept open
            client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            http_request(client, "/pid")
            served[read_response(client).rpartition(b'"pid":')[2].strip(b" }\r\n")] += 1
            clients.append(client)
    finally:
        for client in clients:
            client.close()

    assert sorted(served.values()) in ([15, 15], [14, 16]), served
