"""A worker's sign of life: a timestamp in memory it shares with its master.

A greenlet in the worker writes the time every second or so. While the worker's event loop
runs, the timestamp moves; when a handler blocks the loop (a CPU loop, a C call that never
yields), it stops, and the master, which reads it, kills the worker once it is older than
``--timeout``. A blocked worker cannot answer any message, so the master must be able to tell
without asking.

Shared memory rather than a pipe or a file (gunicorn touches a temporary file): a beat is one
store into memory, with no system call and nothing for the master to drain or clean up. The
mapping is anonymous and shared, made by the master before it forks, so both processes see the
same eight bytes. ``time.monotonic()`` reads ``CLOCK_MONOTONIC``, one clock for every process
on the host, so the master compares the worker's reading with its own.
"""

from __future__ import annotations

import mmap
import struct
import time

_STAMP = struct.Struct("d")


class Heartbeat:
    """Eight shared bytes: the time of the last beat. Make it before forking the worker."""

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, _STAMP.size)  # MAP_SHARED | MAP_ANONYMOUS
        self.beat()

    def beat(self) -> None:
        """Record that the event loop ran just now."""
        _STAMP.pack_into(self._map, 0, time.monotonic())

    def age(self) -> float:
        """Seconds since the last beat."""
        (stamp,) = _STAMP.unpack_from(self._map, 0)
        return time.monotonic() - float(stamp)

    def close(self) -> None:
        self._map.close()
