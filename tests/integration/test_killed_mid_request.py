"""A worker killed between two writes of one request leaves neither behind (issue 20, item 3).

Unsafe requests are transactional by default: the first write begins the request's
transaction, and a process that dies before the end commits nothing, on every backend. Before
(``atomic_requests`` off by default), each statement committed on its own and the first write
outlived the worker.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys

import pytest
from serving import child_env, free_port, write_module

from microback.testing import database_servers, database_url

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest

APP = """
    import os
    import signal

    from microback import App
    from microback.db import Database, fields

    app = App(secret_key="killed-mid-request-test-secret-0123456789")
    db = Database(app, {url!r})


    class Item(db.Model):
        name = fields.CharField(max_length=20)


    db.create_tables()


    @app.post("/two-writes")
    def two_writes(request):
        Item.create(name="first")
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies between the two writes
        Item.create(name="second")
        return {{}}, 201


    @app.get("/items")
    def items(request):
        return {{"names": [item.name for item in Item.select()]}}
"""


def test_a_worker_killed_between_two_writes_keeps_neither(start_server, tmp_path, database_url):
    write_module(tmp_path, "two_writes.py", APP.format(url=database_url))
    # The table once, before the worker starts.
    subprocess.run(
        [sys.executable, "-c", "import two_writes"], cwd=tmp_path, env=child_env(), check=True
    )
    server = start_server("two_writes.py:app", "--workers", "1", port=free_port())

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        connection.request("POST", "/two-writes", body=b"{}")
        connection.getresponse()
    connection.close()
    server.wait_for_line(r"was killed by SIGKILL; starting a new one", timeout=30)

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", "/items")  # answered by the new worker
        response = connection.getresponse()
        assert response.status == 200, server.log
        assert json.loads(response.read()) == {"names": []}
    finally:
        connection.close()
