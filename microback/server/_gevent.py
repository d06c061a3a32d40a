"""Every use of a private name or internal of gevent in microback.

gevent documents no API for these, so each function says why it reaches inside, and
``tests/server/test_gevent_seam.py`` has one test per function pinning the behaviour relied on:
an upgrade that changes it fails that named test. pyproject.toml bounds gevent below its next
major version.
"""

from __future__ import annotations

import socket
from typing import Any

import gevent
import gevent.socket

__all__ = ["catch_sigchld", "raw_socket", "wait_readable", "wrapped_socket"]


def raw_socket(sock: Any) -> socket.socket:
    """The real socket under a gevent socket (``_sock``), or *sock* itself if it wraps none.

    The real one's ``recv()``/``send()`` do not wait for the loop, and ``shutdown()`` on it
    wakes a greenlet reading the wrapper.
    """
    raw: socket.socket = getattr(sock, "_sock", sock)
    return raw


def wrapped_socket(sock: Any) -> socket.socket | None:
    """The real socket under a plain gevent socket (not a TLS one, which must encrypt), else None.

    A first ``send()`` straight on it skips the loop when the kernel takes the bytes at once.
    """
    return raw_socket(sock) if type(sock) is gevent.socket.socket else None


def wait_readable(sock: Any) -> None:
    """Wait until the gevent socket *sock* is readable, within its timeout (else TimeoutError).

    What gevent's ``recv()`` waits with (``_wait`` on its ``_read_event``), without the read it
    tries first: a caller whose read on the real socket has just failed would pay for a
    second failed system call.
    """
    sock._wait(sock._read_event)


def catch_sigchld() -> None:
    """Have libev catch SIGCHLD from now on (the hub's loop ``install_sigchld``).

    gevent installs the handler only with its first child watcher; see server/master.py.
    """
    gevent.get_hub().loop.install_sigchld()
