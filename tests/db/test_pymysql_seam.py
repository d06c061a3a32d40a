"""The one private name of PyMySQL that microback/db/_pymysql.py uses (issue 13)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from microback.db._pymysql import connection_socket
from microback.testing import selected_backends


def test_connection_socket_is_the_open_socket_then_none(database_servers):
    if "mysql" not in selected_backends():
        pytest.skip("MariaDB/MySQL is not selected in MICROBACK_TEST_DATABASES")
    import pymysql

    parts = urlsplit(database_servers.url("mysql"))
    conn = pymysql.connect(
        host=parts.hostname, port=parts.port or 3306, user=parts.username, ssl_disabled=True
    )
    sock = connection_socket(conn)
    assert isinstance(sock, socket.socket)
    assert sock.fileno() >= 0
    conn.close()
    assert connection_socket(conn) is None
