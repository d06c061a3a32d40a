"""Make room for the connections a server is asked to hold: the open file limit.

Every connection is a file descriptor. The soft ``RLIMIT_NOFILE`` is often 1024 while the hard
limit allows far more (systemd and Docker give 524288 or more): a server that keeps the soft
limit fails ``accept()`` with EMFILE long before ``--connections`` is reached, and a slowloris
attack then takes every descriptor. So, as nginx (``worker_rlimit_nofile``) does, the server
raises its soft limit to the hard one once at start (workers inherit it across the fork), and
lowers the connection cap to what the limit allows, keeping :data:`RESERVED_FDS` for
everything else the process opens. Failing to raise the limit is not an error: the server runs
with the limit it has and a smaller cap.
"""

from __future__ import annotations

import logging
import resource

server_logger = logging.getLogger("microback.server")

#: Descriptors kept out of the connection cap: the listening sockets, stdio and the log, the
#: pipes between master and workers, gevent's own, and what the application opens (database
#: connections, files, outgoing HTTP).
RESERVED_FDS = 128


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft open file limit to the hard limit; return the soft limit now in force.

    *wanted* is the limit to ask for when the hard limit is unlimited (Linux refuses
    ``RLIM_INFINITY`` for open files, so a finite number is needed). Never raises.
    """
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return -1
    target = wanted if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as exc:
        server_logger.debug(
            "cannot raise the open file limit from %d to %d: %s", soft, target, exc
        )
        return soft
    return target


def fit_connections(connections: int) -> int:
    """Return *connections*, lowered if the open file limit cannot hold that many.

    Raises the soft limit first (see the module docstring); logs one warning when the cap had
    to be lowered, naming the limit so the operator knows what to raise (``LimitNOFILE=`` in
    systemd, ``ulimit -n``, ``--ulimit nofile=`` in Docker).
    """
    limit = raise_open_file_limit(connections + RESERVED_FDS)
    if limit < 0 or limit == resource.RLIM_INFINITY:
        return connections
    room = max(1, limit - RESERVED_FDS)
    if connections <= room:
        return connections
    server_logger.warning(
        "at most %d connections instead of %d: the open file limit is %d (raise it with "
        "ulimit -n, or LimitNOFILE= in systemd)",
        room,
        connections,
        limit,
    )
    return room
