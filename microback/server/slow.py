"""One warning line for a request slower than a threshold, with where its time went.

The access line says how long a request took; this line, for requests over
``--slow-request-threshold`` (default 1 s), says why::

    slow request: GET /reports/<int:year> answered 200 in 1520 ms: app 1510 ms, of which
    database 1302 ms and waiting for a pool connection 150 ms [request 5f3a9c1e04-2a]

*in all* is from the end of the request head to the last byte written; *app* is the time in
the application (its call and the iteration of its body), the rest waiting for a place in the
app (``--max-concurrent-requests``) or reading a small body first. The database figures are
what the application reports through two environ keys, which microback's ``Database`` sets
at the end of each request (any other framework may too; absent, they count as 0):

- ``microback.db_seconds``: seconds in database calls (queries, commits, opening
  connections);
- ``microback.pool_wait_seconds``: seconds waiting for a free pooled connection.

The route is ``microback.route`` (the template, never the raw path), else the path. The
record carries the request id (``request_id``), so ``--access-log-format json`` writes it as
a JSON object like the app's records.
"""

from __future__ import annotations

import logging
from typing import Any

server_logger = logging.getLogger("microback.server")

#: Default for ``--slow-request-threshold``, in seconds.
DEFAULT_THRESHOLD = 1.0


def log_slow_request(
    environ: dict[str, Any], status: int, total: float, app: float, request_id: str
) -> None:
    """Log the slow-request warning of one request (see the module docstring)."""
    server_logger.warning(
        "%s",
        describe(environ, status, total, app),
        extra={"request_id": request_id, "user_id": environ.get("microback.user_id")},
    )


def describe(environ: dict[str, Any], status: int, total: float, app: float) -> str:
    """The line's text: route, status and the split of *total* seconds."""
    route = environ.get("microback.route") or environ.get("PATH_INFO", "")
    database = float(environ.get("microback.db_seconds") or 0.0)
    waited = float(environ.get("microback.pool_wait_seconds") or 0.0)
    return (
        f"slow request: {environ.get('REQUEST_METHOD', '')} {route} answered {status} "
        f"in {total * 1000:.0f} ms: app {app * 1000:.0f} ms, of which database "
        f"{database * 1000:.0f} ms and waiting for a pool connection {waited * 1000:.0f} ms"
    )
