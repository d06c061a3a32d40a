"""One test per use of gevent's internals in microback/server/_gevent.py (issue 13).

Each pins the gevent behaviour the seam relies on, so that a gevent upgrade that changes it
fails here, by name.
"""

from __future__ import annotations

import os
import socket

import gevent
import gevent.event
import gevent.monkey
import gevent.socket
import pytest

from microback.server._gevent import catch_sigchld, raw_socket, wait_readable, wrapped_socket

blocking_sleep = gevent.monkey.get_original("time", "sleep")


def test_raw_socket_is_the_real_non_waiting_socket_under_gevents():
    left, right = gevent.socket.socketpair()
    try:
        raw = raw_socket(left)
        assert type(raw) is not gevent.socket.socket
        assert raw.fileno() == left.fileno()
        assert raw.gettimeout() == 0.0  # does not wait: gevent waits in its loop instead
        with pytest.raises(BlockingIOError):
            raw.recv(1)
        right.sendall(b"x")
        assert raw.recv(1) == b"x"
        # shutdown() on the real socket wakes a greenlet blocked reading the wrapper.
        reader = gevent.spawn(left.recv, 1)
        gevent.sleep(0.01)
        raw.shutdown(socket.SHUT_RD)
        assert reader.get(timeout=5) == b""
    finally:
        left.close()
        right.close()


def test_wait_readable_waits_within_the_socket_timeout_and_reads_nothing():
    left, right = gevent.socket.socketpair()
    try:
        left.settimeout(0.05)
        with pytest.raises(TimeoutError):
            wait_readable(left)
        left.settimeout(5)
        gevent.spawn_later(0.01, right.sendall, b"xy")
        wait_readable(left)
        assert raw_socket(left).recv(8) == b"xy"  # nothing was read while waiting
        # A shutdown of the real socket (how the server wakes a reader) ends the wait too.
        gevent.spawn_later(0.01, raw_socket(left).shutdown, socket.SHUT_RD)
        wait_readable(left)
        assert raw_socket(left).recv(8) == b""
    finally:
        left.close()
        right.close()


def test_raw_socket_of_a_plain_socket_is_itself():
    left, right = socket.socketpair()
    try:
        assert raw_socket(left) is left
        assert wrapped_socket(left) is None
    finally:
        left.close()
        right.close()


def test_wrapped_socket_only_for_a_plain_gevent_socket():
    left, right = gevent.socket.socketpair()
    try:
        assert wrapped_socket(left) is raw_socket(left)
        assert wrapped_socket(left) is not left
    finally:
        left.close()
        right.close()


def test_catch_sigchld_installs_libevs_handler():
    # A child that exits before its watcher exists, the loop not having run in between (as
    # after fork_and_watch on a loaded host), is still seen by that watcher.
    catch_sigchld()
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    blocking_sleep(0.2)  # the child has exited; the loop does not run meanwhile
    watcher = gevent.get_hub().loop.child(pid)
    done = gevent.event.Event()
    watcher.start(done.set)
    try:
        assert done.wait(timeout=10)
        assert os.waitstatus_to_exitcode(watcher.rstatus) == 7
    finally:
        watcher.stop()
