"""The slow-request line under a real ``microback serve``: route, request id, status and where
the time went (app, database queries, waiting for a pooled connection)."""

from __future__ import annotations

import http.client
import re
import threading
from pathlib import Path

from serving import StartServer, free_port, write_module

APP = """
    import time

    from microback import App
    from microback.db import Database

    app = App(secret_key="slow-request-test-secret-key-long-enough")
    # One connection: a second request must wait for it while the first holds it.
    db = Database(app, "sqlite:///slow.db?max_connections=1&pool_timeout=20")


    @db.database.func("sleep")
    def sleep(seconds):
        time.sleep(seconds)  # gevent's under microback serve: yields, holding the connection
        return seconds


    @app.get("/naps/<int:n>")
    def nap(request, n):
        db.database.execute_sql("SELECT sleep(0.6)")
        return {"n": n}


    @app.get("/quick")
    def quick(request):
        return {"ok": True}
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
    # Two requests at once, each holding the only connection for 0.6 s in a query: the
    # second to reach the pool waits for the first.
    threads = [
        threading.Thread(target=_get, args=(server.port, f"/naps/{n}", ids)) for n in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert _get(server.port, "/quick") == 200
    server.wait_for_line(SLOW)
    server.wait_for_line(r"GET /quick ")  # its access line: a slow line would be before it
    lines = [SLOW.search(line) for line in server.lines]
    found = {match.group(7): match for match in lines if match}
    assert sorted(found) == sorted(ids.values()), server.lines  # one line each, none for /quick
    for match in found.values():
        route, status, total, app, database, waited = match.groups()[:6]
        assert (route, status) == ("/naps/<int:n>", "200")
        assert int(total) >= int(app) >= int(database) + int(waited) - 1
        assert int(database) >= 550  # the query's sleep(0.6), and not the pool wait
    # The second waited (most of) the first one's query out.
    assert max(int(match.group(6)) for match in found.values()) >= 200


def test_the_line_can_be_turned_off(start_server: StartServer, tmp_path: Path) -> None:
    write_module(tmp_path, "slowapp.py", APP)
    server = start_server("slowapp:app", "--slow-request-threshold", "0", port=free_port())
    assert _get(server.port, "/naps/3") == 200
    server.wait_for_line(r"GET /naps/3 ")
    assert not any("slow request" in line for line in server.lines)
