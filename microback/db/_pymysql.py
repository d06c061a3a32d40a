"""Every use of a private name of PyMySQL in microback (one: the connection's socket).

PyMySQL is the only driver whose internals microback touches (psycopg's are reached through
peewee's adapter, in ``_peewee.py``), so it has its own seam; ``tests/db/test_pymysql_seam.py``
pins the behaviour. pyproject.toml bounds PyMySQL below its next major version.
"""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["connection_socket"]


def connection_socket(conn: Any) -> socket.socket | None:
    """The socket of a PyMySQL connection, ``None`` once it is closed; PyMySQL has no getter.

    Its file descriptor tells, without a round trip, whether the server hung up.
    """
    sock: socket.socket | None = getattr(conn, "_sock", None)
    return sock
