"""The master process: fork the workers, replace those that die or hang, reload, stop.

The master imports nothing of the application. It is given sockets already bound (by the
command line, so that a bind error is one line before anything starts) and a
:class:`~.worker.WorkerConfig` whose ``load`` each worker calls after the fork (see
:mod:`.worker` for why not before). It runs one loop in its main greenlet and registers
nothing in the event loop but its signal handlers, which each worker cancels: a fork then
copies nothing that would go on running in the child.

Signals:

- SIGTERM, SIGINT: graceful stop. The master closes its copies of the sockets and sends
  SIGTERM to every worker; each stops accepting, answers what is in flight (with
  ``Connection: close``) within ``graceful_timeout`` and exits. The master exits 0 when the
  last worker has; one still running :data:`STOP_MARGIN` seconds after the graceful timeout
  is killed. A second signal is passed on, and the workers close every connection at once.
- SIGHUP: reload. A new generation of workers imports the code as it is on disk; once every
  one of them accepts connections, the old ones stop gracefully. The sockets stay open all
  along (the kernel queues connections for whichever worker accepts first), so no connection
  is refused. If a new worker cannot load the application, the reload is abandoned, the old
  workers keep serving, and one line says why.

Supervision, on each pass of the loop (every :data:`TICK` seconds, and at once on a signal, a
worker's report or a worker's exit):

- a worker that exits or is killed is replaced at once; one whose replacement cannot load the
  application is tried again after 1 s, doubling up to 30 s;
- a worker whose heartbeat (:mod:`.heartbeat`) is older than ``timeout`` — its event loop has
  not run for that long — gets SIGQUIT, which dumps its Python stack to the log, and SIGKILL
  a second later; a worker that takes longer than ``timeout`` to start is treated the same;
- with a :class:`~.reload.SourceWatcher`, a changed source file starts a reload (once a
  second at most).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.os
import gevent.select

from ._gevent import catch_sigchld
from .balance import AcceptBoard
from .heartbeat import Heartbeat
from .listener import listener_address, listener_url
from .reload import SourceWatcher
from .worker import FAILED, READY, WorkerConfig, run_worker

server_logger = logging.getLogger("microback.server")

#: Longest wait between two passes of the supervision loop, in seconds.
TICK = 0.25
#: How long after the graceful timeout a stopping master kills the workers still running.
STOP_MARGIN = 5.0
#: Time a blocked worker gets to dump its stack (SIGQUIT) before SIGKILL.
KILL_AFTER_ABORT = 1.0
#: Longest wait before trying again to start a worker that could not load the application.
MAX_RETRY_DELAY = 30.0
#: How often ``--reload`` looks at the source files, in seconds.
POLL_SECONDS = 1.0


class BootError(Exception):
    """The first workers could not start; ``str()`` is the reason, in one line."""


@dataclass(eq=False)
class _Worker:
    pid: int
    generation: int
    heartbeat: Heartbeat
    report_fd: int
    report: bytes = b""
    ready: bool = False
    retiring: bool = False
    failure: str | None = None
    kill_at: float | None = None
    #: Its place on the accept board (None when every place was taken).
    slot: int | None = None


class Master:
    """Run *workers* worker processes of *config* until SIGTERM or SIGINT.

    *watcher* enables reload on source changes (``--reload``). *on_ready* is called once,
    when the first workers all serve (the command line logs its start-up notices there, so
    that a start-up failure stays one line).
    """

    def __init__(
        self,
        config: WorkerConfig,
        workers: int,
        *,
        watcher: SourceWatcher | None = None,
        on_ready: Callable[[], None] | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a whole number of at least 1, not {workers!r}")
        self.config = config
        self.count = workers
        self.watcher = watcher
        self.on_ready = on_ready
        #: Called with the pid of each worker that exited (metrics forget its live gauges).
        self.on_exit = on_exit
        tls = config.server.ssl_context is not None
        self.urls = [listener_url(listener_address(s), tls) for s in config.listeners]
        self._workers: dict[int, _Worker] = {}
        self._generation = 1  # the generation that serves
        self._last_generation = 1
        self._pending: int | None = None  # the generation a reload is starting
        self._reload_again = False
        self._announced = False
        self._stopping = False
        self._stop_deadline = math.inf
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self._next_poll = time.monotonic() + POLL_SECONDS
        self._signals: list[int] = []
        self._handlers: list[Any] = []
        # Before the first fork, so that every worker shares it: room for a whole generation
        # starting while the old one drains, and for replacements of workers that died.
        self._board = AcceptBoard(2 * workers + 2)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- the loop

    def run(self) -> None:
        """Start the workers and supervise them until a stop signal has stopped them all.

        Raises :class:`BootError` when a first worker cannot load the application; the
        others are killed first.
        """
        self._handlers = [
            gevent.signal_handler(sig, self._on_signal, sig)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        ]
        try:
            for _ in range(self.count):
                self._spawn(self._generation)
            while self._workers or not self._stopping:
                self._wait()
                self._supervise()
            server_logger.info("stopped")
        except BootError:
            self._kill_all()
            raise
        finally:
            for handler in self._handlers:
                handler.cancel()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _wait(self) -> None:
        fds = [self._wake_r, *(w.report_fd for w in self._workers.values() if w.report_fd >= 0)]
        gevent.select.select(fds, [], [], TICK)
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)

    def _wake(self, *_: object) -> None:
        with contextlib.suppress(BlockingIOError):  # full of wake-ups already
            os.write(self._wake_w, b".")

    def _on_signal(self, signum: int) -> None:
        self._signals.append(signum)
        self._wake()

    def _supervise(self) -> None:
        now = time.monotonic()
        for worker in list(self._workers.values()):
            self._read_report(worker)
        self._reap()
        signals, self._signals = self._signals, []
        for signum in signals:
            self._on_master_signal(signum)
        self._check_reload()
        self._check_heartbeats(now)
        if self._stopping:
            if now > self._stop_deadline and self._workers:
                server_logger.warning(
                    "%d worker(s) still running %gs after the graceful timeout; killing them",
                    len(self._workers),
                    STOP_MARGIN,
                )
                self._signal_all(signal.SIGKILL)
                self._stop_deadline = math.inf
            return
        self._announce()
        self._replace_missing(now)
        self._poll_sources(now)

    # -- workers

    def _spawn(self, generation: int) -> None:
        heartbeat = Heartbeat()  # beats from now: a slow start counts against the timeout
        read_fd, write_fd = os.pipe()
        slot = self._board.take()
        _catch_sigchld()  # before the fork: a worker may exit before fork() returns here
        try:
            pid = gevent.os.fork_and_watch(callback=self._wake)
        except OSError as exc:  # out of memory or processes: the next pass tries again
            self._board.give_back(slot)
            heartbeat.close()
            os.close(read_fd)
            os.close(write_fd)
            reason = f"cannot start a worker process: {exc.strerror}"
            if not self._announced:
                raise BootError(reason) from exc
            if generation == self._pending:
                self._abandon_reload(reason)
            else:
                self._postpone_start(reason)
            return
        if pid == 0:
            os.close(read_fd)
            run_worker(
                self.config, heartbeat, write_fd, self._forget_in_child, self._board.seat(slot)
            )
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self._workers[pid] = _Worker(pid, generation, heartbeat, read_fd, slot=slot)
        server_logger.debug("started worker %d (generation %d)", pid, generation)

    def _forget_in_child(self) -> None:
        # In the new worker: drop what belongs to the master (see the worker module).
        for handler in self._handlers:
            handler.cancel()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        for worker in self._workers.values():
            if worker.report_fd >= 0:
                os.close(worker.report_fd)
            worker.heartbeat.close()
        self._workers.clear()

    def _read_report(self, worker: _Worker) -> None:
        # One line per worker. Read it as it comes rather than waiting for the end of the
        # pipe: a process the application forks may hold the pipe open long after.
        while worker.report_fd >= 0:
            try:
                data = os.read(worker.report_fd, 4096)
            except BlockingIOError:
                return
            worker.report += data
            if data and b"\n" not in worker.report:
                continue
            os.close(worker.report_fd)
            worker.report_fd = -1
            message = worker.report.partition(b"\n")[0]
            if message == READY:
                worker.ready = True
                self._retry_delay = 0.0  # the code loads again: no more waiting
                server_logger.debug("worker %d ready", worker.pid)
            elif message.startswith(FAILED):
                worker.failure = message[len(FAILED) :].decode("utf-8", "replace")

    def _reap(self) -> None:
        for worker in list(self._workers.values()):
            try:
                pid, status = gevent.os.waitpid(worker.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = worker.pid, 0
            if pid:
                self._exited(worker, status)

    def _exited(self, worker: _Worker, status: int) -> None:
        self._read_report(worker)  # what it wrote before it exited
        if worker.report_fd >= 0:
            os.close(worker.report_fd)
        del self._workers[worker.pid]
        self._board.give_back(worker.slot)
        worker.heartbeat.close()
        if self.on_exit is not None:
            self.on_exit(worker.pid)
        how = _describe(status)
        if worker.retiring or self._stopping:
            server_logger.debug("worker %d %s", worker.pid, how)
        elif not worker.ready or worker.generation == self._pending:
            self._start_failed(worker, worker.failure or f"worker {worker.pid} {how} at start")
        else:
            server_logger.warning("worker %d %s; starting a new one", worker.pid, how)

    def _start_failed(self, worker: _Worker, reason: str) -> None:
        if not self._announced and worker.generation == self._generation:
            raise BootError(reason)
        if worker.generation == self._pending:
            self._abandon_reload(reason)
            return
        self._postpone_start(f"a new worker could not start: {reason}")

    def _abandon_reload(self, reason: str) -> None:
        assert self._pending is not None
        server_logger.error("reload failed, the old workers keep serving: %s", reason)
        self._retire(self._pending)
        self._pending = None
        self._reload_finished()

    def _postpone_start(self, problem: str) -> None:
        self._retry_delay = min(max(1.0, self._retry_delay * 2), MAX_RETRY_DELAY)
        self._retry_at = time.monotonic() + self._retry_delay
        server_logger.error("%s; trying again in %gs", problem, self._retry_delay)

    def _replace_missing(self, now: float) -> None:
        if now < self._retry_at:
            return
        serving = sum(
            1
            for w in self._workers.values()
            if w.generation == self._generation and not w.retiring
        )
        for _ in range(self.count - serving):
            self._spawn(self._generation)
            if time.monotonic() < self._retry_at:
                return  # the fork failed

    def _announce(self) -> None:
        if self._announced:
            return
        ready = [w.pid for w in self._workers.values() if w.ready and not w.retiring]
        if len(ready) < self.count:
            return
        self._announced = True
        for url in self.urls:
            server_logger.info("listening on %s", url)
        server_logger.info(
            "%d worker(s) serving (pids %s); SIGHUP reloads the code, SIGTERM stops",
            self.count,
            ", ".join(map(str, sorted(ready))),
        )
        if self.on_ready is not None:
            self.on_ready()

    def _check_heartbeats(self, now: float) -> None:
        timeout = self.config.timeout
        for worker in self._workers.values():
            if worker.kill_at is not None:
                if now >= worker.kill_at:
                    _kill(worker.pid, signal.SIGKILL)
                    worker.kill_at = math.inf
                continue
            age = worker.heartbeat.age()
            if age <= timeout:
                continue
            if worker.ready:
                server_logger.error(
                    "worker %d: its event loop has not run for %.0fs (timeout %gs), blocked "
                    "by a request; killing it (its stack follows)",
                    worker.pid,
                    age,
                    timeout,
                )
            else:
                worker.failure = f"worker {worker.pid} did not start within {timeout:g}s"
            _kill(worker.pid, signal.SIGQUIT)  # faulthandler in the worker dumps its stack
            worker.kill_at = now + KILL_AFTER_ABORT

    # -- reload and stop

    def _on_master_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            if self._stopping or not self._announced:
                server_logger.info("received SIGHUP while %s; ignored", _state(self._stopping))
            else:
                self._start_reload("received SIGHUP")
        elif not self._stopping:
            self._begin_stop(name)
        else:
            server_logger.warning("received %s again; the workers close all connections now", name)
            self._signal_all(signal.SIGTERM)

    def _start_reload(self, why: str) -> None:
        if self._pending is not None:
            self._reload_again = True
            server_logger.info("%s; reloading again once the reload in progress ends", why)
            return
        self._last_generation += 1
        generation = self._pending = self._last_generation
        server_logger.info("%s: starting %d worker(s) with the code as it is now", why, self.count)
        for _ in range(self.count):
            if self._pending != generation:
                break  # a fork failed and abandoned the reload
            self._spawn(generation)

    def _check_reload(self) -> None:
        if self._pending is None:
            return
        new = [w for w in self._workers.values() if w.generation == self._pending]
        if len(new) < self.count or not all(w.ready for w in new):
            return
        old_generations = {
            w.generation for w in self._workers.values() if w.generation != self._pending
        }
        self._generation, self._pending = self._pending, None
        server_logger.info(
            "reload done: %d new worker(s) serving (pids %s); the old ones finish their "
            "requests and stop",
            self.count,
            ", ".join(str(w.pid) for w in sorted(new, key=lambda w: w.pid)),
        )
        for generation in old_generations:
            self._retire(generation)
        self._reload_finished()

    def _reload_finished(self) -> None:
        if self._reload_again:
            self._reload_again = False
            self._start_reload("reloading again")

    def _retire(self, generation: int) -> None:
        for worker in self._workers.values():
            if worker.generation == generation and not worker.retiring:
                worker.retiring = True
                _kill(worker.pid, signal.SIGTERM)

    def _poll_sources(self, now: float) -> None:
        if self.watcher is None or now < self._next_poll or not self._announced:
            return
        self._next_poll = now + POLL_SECONDS
        changed = self.watcher.changed()
        if changed:
            more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
            self._start_reload(f"{changed[0]}{more} changed")

    def _begin_stop(self, name: str) -> None:
        self._stopping = True
        self._stop_deadline = (
            time.monotonic()
            + self.config.server.drain_delay
            + self.config.server.graceful_timeout
            + STOP_MARGIN
        )
        self._pending = None
        self._reload_again = False
        for sock in self.config.listeners:
            sock.close()  # the workers' copies stay open until each one stops accepting
        server_logger.info(
            "received %s: stopping %d worker(s), up to %gs for requests in flight",
            name,
            len(self._workers),
            self.config.server.graceful_timeout,
        )
        for worker in self._workers.values():
            worker.retiring = True
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for worker in self._workers.values():
            _kill(worker.pid, signum)

    def _kill_all(self) -> None:
        # Start-up failed: nothing has been served, so nothing is worth a graceful stop.
        self._signal_all(signal.SIGKILL)
        for worker in list(self._workers.values()):
            with contextlib.suppress(ChildProcessError):
                gevent.os.waitpid(worker.pid, 0)
            worker.heartbeat.close()
            if worker.report_fd >= 0:
                os.close(worker.report_fd)
        self._workers.clear()


def _catch_sigchld() -> None:
    """Have libev catch SIGCHLD from now on, so that no worker's exit goes unnoticed.

    gevent installs libev's SIGCHLD handler only when it makes its first child watcher, and
    ``fork_and_watch`` makes a child's watcher in the parent after ``fork()`` has returned.
    Until then SIGCHLD has its default disposition, under which the kernel discards it. So a
    first worker that exited before the master ran again (an app that cannot be imported, on
    a loaded host: about one start in 10 to 60) sent a signal nobody caught: its watcher never
    fired, ``gevent.os.waitpid(pid, WNOHANG)`` (which is ``os.waitpid`` once gevent has
    patched ``os``, and answers for a watched child from its watcher alone) said it still ran,
    and the master waited forever for a zombie, through SIGTERM too. With the handler in place
    before the fork, libev records the signal and reaps the child on its next pass, by which
    time the watcher exists: libev allows a child watcher to start after the fork as long as
    the loop has not run in between. Once installed it stays; later calls cost nothing.
    """
    catch_sigchld()


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone; the next pass reaps it
        os.kill(pid, signum)


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _state(stopping: bool) -> str:
    return "stopping" if stopping else "starting"
