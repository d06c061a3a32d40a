"""The slow-request line under a real ``microback serve``: route, request id, status and where
the time went (app, database queries, waiting for a pooled connection)."""

from __future__ import annotations

import http.client
import re
import threading
from pathlib import Path

from serving import StartServer, free_port, write_module

APP = """
    import sys
    import threading
    import time

    from microback import App
    from microback.db import Database

    app = App(secret_key="slow-request-test-secret-key-long-enough")
    # One connection: a second request must wait for it while the first holds it.
    db = Database(app, "sqlite:///slow.db?max_connections=1&pool_timeout=20")


    second_arrived = threading.Event()  # gevent's under microback serve, as is time.sleep


    @db.database.func("sleep")
    def sleep(seconds, first):
        print("holding the connection", file=sys.stderr, flush=True)
        if first:
            second_arrived.wait(30)  # the second request is then on its way into the pool
        time.sleep(seconds)  # yields, holding the connection
        return seconds


    @app.get("/naps/<int:n>")
    def nap(request, n):
        if n == 2:
            second_arrived.set()
        db.database.execute_sql("SELECT sleep(0.6, ?)", (n == 1,))
        return {"n": n}
"""

SLOW = re.compile(
    r"slow request: GET (\S+) answered (\d+) in (\d+) ms: app (\d+) ms, of which database "
    r"(\d+) ms and waiting for a pool connection (\d+) ms \[request (\S+)\]"
)


def _get(port: int, path: str, found: dict[str, str] | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    if found is not None:
        found[path] = response.getheader("X-Request-ID", "")
    return response.status


def test_a_slow_request_gets_one_line_with_its_database_and_pool_wait_time(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "slowapp.py", APP)
    server = start_server("slowapp:app", "--slow-request-threshold", "0.3", port=free_port())
    ids: dict[str, str] = {}
    # Two requests, each holding the only connection for 0.6 s in a query; the second is
    # sent once the first holds it, and the first's 0.6 s begin when the second has arrived,
    # so the second waits that long for the connection.
    first = threading.Thread(target=_get, args=(server.port, "/naps/1", ids))
    first.start()
    server.wait_for_line("holding the connection")
    second = threading.Thread(target=_get, args=(server.port, "/naps/2", ids))
    second.start()
    first.join(timeout=60)
    second.join(timeout=60)
    server.wait_for_line(r"GET /naps/2 ")  # its access line comes after its slow line
    server.wait_for_line(r"GET /naps/1 ")
    lines = [SLOW.search(line) for line in server.lines]
    found = {match.group(7): match for match in lines if match}
    assert sorted(found) == sorted(ids.values()), server.lines  # one line each
    for match in found.values():
        route, status, total, app, database, waited = match.groups()[:6]
        assert (route, status) == ("/naps/<int:n>", "200")
        assert int(total) >= int(app) >= int(database) + int(waited) - 1, server.lines
        assert int(database) >= 500, server.lines  # the query's sleep(0.6), not the pool wait
    assert int(found[ids["/naps/2"]].group(6)) >= 400, server.lines  # the first's sleep


def test_the_line_can_be_turned_off(start_server: StartServer, tmp_path: Path) -> None:
    write_module(tmp_path, "slowapp.py", APP)
    server = start_server("slowapp:app", "--slow-request-threshold", "0", port=free_port())
    assert _get(server.port, "/naps/3") == 200
    server.wait_for_line(r"GET /naps/3 ")
    assert not any("slow request" in line for line in server.lines)
