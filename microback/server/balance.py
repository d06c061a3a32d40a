"""Spread new connections evenly over the workers that share a listening socket.

Every worker of ``--workers N`` waits on the same listening socket and is woken when a
connection arrives; whichever accepts first takes it. Taking one per turn of the loop
(``max_accept = 1``) was to make them take turns, but a worker whose turns were shorter took
more: wrk's 50 connections ended up 35/15, 30/20 or 27/23 over two workers, and 50/0 or 1/49
on a loaded host (benchmarks/server/README.md, "--workers 2 spread").

So the workers keep score in memory the master maps before its first fork, as it does for
the heartbeat: per worker, the connections it holds and until when it accepts. A worker that
finds a connection waiting while it holds more than another accepting worker steps aside: it
stops watching the socket for :data:`PAUSE`, and the other, woken by the same connection,
takes it. It steps aside for at most :data:`MOST_PAUSED` in a row, so a worker that is
blocked, or gone without the master noticing yet, cannot leave a connection waiting longer:
the others accept it then. (nginx balances its workers with ``accept_mutex`` and a per-worker
load threshold; here deciding costs a read of a few slots, and nobody waits on a lock.)

One socket per worker (``SO_REUSEPORT``) would let the kernel spread connections instead, but a
worker that stops drops the connections queued on its own socket (benchmarks/server/README.md).
"""

from __future__ import annotations

import mmap
import struct
import time
from collections.abc import Callable
from typing import Any

from gevent.server import StreamServer

__all__ = ["MOST_PAUSED", "PAUSE", "AcceptBoard", "BalancedStream", "Seat"]

_SLOT = struct.Struct("qd")  # connections held, accepting until (time.monotonic())

#: How long a worker holding more connections than another stops accepting, in seconds.
PAUSE = 0.001
#: The longest a worker steps aside in a row before it accepts all the same, in seconds. With
#: 10 ms, a worker that two busy cores left unscheduled that long lost its share (33/17).
MOST_PAUSED = 0.1


class AcceptBoard:
    """A slot per worker in shared memory. The master makes it before its first fork and
    hands each worker a slot (:meth:`take`), freed when the worker exits (:meth:`give_back`)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, _SLOT.size * slots)  # MAP_SHARED | MAP_ANONYMOUS, zeroed
        self._taken: set[int] = set()

    def take(self) -> int | None:
        """A free slot for a new worker, or None when every slot is taken (it then accepts
        without keeping score)."""
        for slot in range(self.slots):
            if slot not in self._taken:
                self._taken.add(slot)
                self.write(slot, 0, 0.0)
                return slot
        return None

    def give_back(self, slot: int | None) -> None:
        """Free the slot of a worker that exited; it stops counting at once."""
        if slot is not None:
            self._taken.discard(slot)
            self.write(slot, 0, 0.0)

    def seat(self, slot: int | None) -> Seat | None:
        """The worker's view of the board (None without a slot)."""
        return None if slot is None else Seat(self, slot)

    def write(self, slot: int, connections: int, until: float) -> None:
        _SLOT.pack_into(self._map, slot * _SLOT.size, connections, until)

    def read(self, slot: int) -> tuple[int, float]:
        connections, until = _SLOT.unpack_from(self._map, slot * _SLOT.size)
        return int(connections), float(until)


class Seat:
    """One worker's slot: what it publishes, and whether it should let another accept."""

    def __init__(self, board: AcceptBoard, slot: int) -> None:
        self._board = board
        self._slot = slot
        self._others = [other for other in range(board.slots) if other != slot]
        self.connections = 0
        self._until = 0.0

    def opened(self) -> None:
        self.connections += 1
        self._board.write(self._slot, self.connections, self._until)

    def closed(self) -> None:
        self.connections -= 1
        self._board.write(self._slot, self.connections, self._until)

    def present(self, seconds: float) -> None:
        """Say this worker accepts for the next *seconds* (renewed by its heartbeat)."""
        self._until = time.monotonic() + seconds
        self._board.write(self._slot, self.connections, self._until)

    def leave(self) -> None:
        """Say this worker accepts no more (it is stopping): the others stop deferring to it."""
        self._until = 0.0
        self._board.write(self._slot, self.connections, self._until)

    def should_step_aside(self) -> bool:
        """Whether another worker that accepts holds fewer connections than this one."""
        now = time.monotonic()
        mine = self.connections
        for other in self._others:
            connections, until = self._board.read(other)
            if until > now and connections < mine:
                return True
        return False


class BalancedStream(StreamServer):
    """gevent's ``StreamServer`` that lets a less loaded worker take a waiting connection.

    It keeps the seat's count itself: up when it accepts, down when the connection's handler
    returns, and it leaves the board when it closes (a graceful stop).
    """

    def __init__(
        self, listener: Any, handle: Callable[..., None], *, seat: Seat, **kwargs: Any
    ) -> None:
        def counted(*args: Any) -> None:
            try:
                handle(*args)
            finally:
                seat.closed()

        super().__init__(listener, counted, **kwargs)
        self.seat = seat
        self._aside_since = 0.0
        self._aside_last = -1.0

    def close(self) -> None:
        self.seat.leave()
        super().close()

    def do_read(self) -> Any:
        if self.seat.should_step_aside():
            now = time.monotonic()
            if now - self._aside_last > 2 * PAUSE:  # not one wait continued: a new one
                self._aside_since = now
            self._aside_last = now
            if now - self._aside_since < MOST_PAUSED:
                self.stop_accepting()  # level-triggered: watching on would spin the loop
                resume = self.loop.timer(PAUSE)
                resume.start(self._resume, resume)
                return None
        accepted = super().do_read()
        if accepted:
            self.seat.opened()
        return accepted

    def _resume(self, timer: Any) -> None:
        timer.close()
        if self.started and not self.closed:
            self.start_accepting()
