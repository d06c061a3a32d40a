"""A worker process: load the application, serve the sockets the master bound, beat, stop.

The master forks and the child continues in :func:`run_worker`, which never returns: every
path ends in ``os._exit``, so the child never runs the master's ``finally`` blocks or exit
handlers, nor flushes its copies of the master's buffers.

gevent and fork. The master forks with gevent's ``fork_and_watch``, which calls
``gevent.reinit()`` in the child: the event loop is prepared for the new process and gevent's
thread pool and resolver start afresh. What reinit does not do is forget what the master had
registered in the loop. The master keeps nothing there but its signal handlers, which are
still installed in the child and would run the master's code on a SIGTERM to the worker; so
the child cancels them first (*forget_master*), then sets its own: SIGTERM starts the graceful
stop; SIGINT and SIGHUP are ignored, since Ctrl-C in a terminal reaches every process of the
group and a reload is the master's business (the master turns both into SIGTERMs to its
workers). SIGQUIT dumps the Python stack of every thread to stderr (``faulthandler``), as the
JVM dumps its threads: the master sends it to a worker whose event loop is blocked, just
before killing it, so the log shows which code held the loop; an operator can send it too.

The application is imported here, in each worker, after the fork, never in the master: a
reload then needs nothing but new workers, which import the code as it is on disk now
(gunicorn calls the other choice "preload": less memory, but a reload cannot change the
code). The worker reports on a pipe to the master, once: ``ready`` when it accepts
connections, or ``failed`` and the one-line reason when the application cannot be loaded.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

import gevent

from .balance import Seat
from .config import ServerConfig
from .heartbeat import Heartbeat
from .logs import flush_logs
from .server import Server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

server_logger = logging.getLogger("microback.server")

#: Exit status of a worker that could not load the application (it reported why first).
EXIT_LOAD_FAILED = 3
READY = b"ready"
FAILED = b"failed "
#: A report is written in one write() of at most PIPE_BUF bytes, so it arrives whole.
_MAX_REPORT = 4000


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker needs: how to load the app, the sockets, and the server's settings.

    *load* imports and returns the WSGI application; ``str()`` of what it raises is the
    one-line reason the master logs. *server* is each worker's server settings. *timeout* is
    the master's ``--timeout``: workers beat several times within it.
    """

    load: Callable[[], WSGIApplication]
    listeners: tuple[socket.socket, ...]
    server: ServerConfig = field(default_factory=ServerConfig)
    timeout: float = 30.0
    #: Called with the application after the graceful stop (the app's shutdown hooks).
    stopped: Callable[[WSGIApplication], None] | None = None


def run_worker(
    config: WorkerConfig,
    heartbeat: Heartbeat,
    report_fd: int,
    forget_master: Callable[[], None],
    seat: Seat | None = None,
) -> NoReturn:
    """Serve as a worker until SIGTERM, then exit: 0 after a graceful stop."""
    status = 1
    try:
        forget_master()
        status = _serve(config, heartbeat, report_fd, seat)
    except BaseException:
        server_logger.exception("worker failed")
    finally:
        flush_logs()
        os._exit(status)


def _serve(config: WorkerConfig, heartbeat: Heartbeat, report_fd: int, seat: Seat | None) -> int:
    master = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until the server takes it: nothing to drain
    faulthandler.register(signal.SIGQUIT, all_threads=True, chain=False)
    try:
        app = config.load()
    except (Exception, SystemExit) as exc:
        reason = " ".join(str(exc).splitlines()) or type(exc).__name__
        _report(report_fd, FAILED + reason.encode("utf-8", "replace"))
        return EXIT_LOAD_FAILED
    server = Server(
        app,
        listeners=config.listeners,
        config=config.server,
        multiprocess=True,
        announce=False,
        seat=seat,
    )
    server.start()
    gevent.spawn(_beat, heartbeat, min(1.0, config.timeout / 4), server, master, seat)
    # Ready once serve_forever has taken SIGTERM (the greenlet runs when it waits): a SIGTERM
    # sent on the master's word that all workers serve must find the handler, not SIG_DFL.
    gevent.spawn(_report, report_fd, READY)
    server.serve_forever(signals=[signal.SIGTERM])
    if config.stopped is not None:
        config.stopped(app)
    return 0


def _beat(
    heartbeat: Heartbeat, interval: float, server: Server, master: int, seat: Seat | None
) -> None:
    while True:
        heartbeat.beat()
        if seat is not None:
            # Accepting for three beats more: a worker whose loop is blocked stops counting
            # then, and the others stop stepping aside for it (see .balance).
            seat.present(3 * interval)
        if os.getppid() != master:
            # The master was killed (kill -9): nobody would ever stop or replace this worker.
            server_logger.warning("the master process is gone; stopping")
            server.stop()
            return
        gevent.sleep(interval)


def _report(fd: int, message: bytes) -> None:
    try:
        os.write(fd, message[:_MAX_REPORT] + b"\n")
        os.close(fd)
    except OSError:
        pass  # the master is gone; the parent check in _beat stops this worker
