"""How many connections a server accepts per turn of its event loop.

A process takes every connection queued when its listener wakes (a worker of several, as
long as it holds no more than the others: tests/server/test_balance.py), so a burst of new
clients arriving while the loop is busy is served in the next turn or two. Taking one per
turn, as workers sharing a socket did so that they would take turns, cost the tail: under
load a turn lasts milliseconds, and the last of 50 connections opened at once waited 50
turns (microback/server/server.py). Turns are counted by a libev prepare watcher, which runs
once before each poll, so the test measures turns, never time.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from serving import StartServer, http_request, read_response, write_module

APP = """
    import gevent
    import gevent.monkey

    from microback import App

    blocking_sleep = gevent.monkey.get_original("time", "sleep")
    turns = [0]


    def count_turn():
        turns[0] += 1


    counter = gevent.get_hub().loop.prepare(ref=False)
    counter.start(count_turn)
    app = App(secret_key="accept-test-secret-key-0123456789abcdef")


    @app.get("/turn")
    def turn(request):
        return {"turn": turns[0]}


    @app.get("/hold-the-loop")
    def hold_the_loop(request):
        blocking_sleep(0.5)  # no other greenlet runs, nothing is accepted meanwhile
        return {"held": True}
"""

BURST = 40


def _turns_of_a_burst(server_port: int) -> list[int]:
    """Open BURST connections while the server's loop is held; return the turn each was
    served in."""
    holder = socket.create_connection(("127.0.0.1", server_port), timeout=10)
    http_request(holder, "/hold-the-loop")
    clients = []
    try:
        for _ in range(BURST):
            client = socket.create_connection(("127.0.0.1", server_port), timeout=10)
            http_request(client, "/turn")  # waits in the kernel until the server reads it
            clients.append(client)
        assert b"200 OK" in read_response(holder)
        turns = []
        for client in clients:
            response = read_response(client)
            assert b"200 OK" in response
            turns.append(int(response.rpartition(b'"turn":')[2].strip(b" }\r\n")))
        return turns
    finally:
        holder.close()
        for client in clients:
            client.close()


@pytest.mark.parametrize("workers", [None, "1"])
def test_connections_queued_while_the_loop_was_busy_are_accepted_together(
    start_server: StartServer, tmp_path: Path, workers: str | None
) -> None:
    write_module(tmp_path, "acceptapp.py", APP)
    server = start_server("acceptapp:app", *(["--workers", workers] if workers else []))

    turns = _turns_of_a_burst(server.port)

    assert max(turns) - min(turns) <= 5, turns  # one or two turns: accept, then read
