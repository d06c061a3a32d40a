"""Run a WSGI app until a signal stops it, then stop gracefully.

The server is gevent's ``StreamServer`` accepting connections, each served by a
:class:`~.connection.Connection` in its own greenlet. Concurrency is capped by a gevent
``Pool`` of ``connections`` slots: while it is full the server stops accepting, and new
connections wait in the kernel's accept queue (back-pressure, not collapse).

A graceful stop, on SIGTERM or SIGINT (Ctrl-C) or :meth:`Server.stop`:

1. close the listening socket, so new connections are refused at once;
2. close idle keep-alive connections, and mark every response still to be sent with
   ``Connection: close``;
3. wait up to ``graceful_timeout`` seconds for the requests in flight to finish;
4. cut off whatever is still running, and return.

A second signal during the wait skips to step 4. A process that manages several servers (the
master of worker processes) calls :meth:`Server.stop` itself and passes ``signals=False`` to
:meth:`Server.serve_forever`.
"""

from __future__ import annotations

import logging
import signal
import socket
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.server import StreamServer

from .connection import Connection, Site
from .environ import base_environ
from .limits import Limits
from .listener import DEFAULT_BACKLOG, bind_listener, format_address, prepare_listener

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

server_logger = logging.getLogger("microback.server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Server:
    """Serve one WSGI application on one address, in this process.

    Nothing happens until :meth:`start` or :meth:`serve_forever`. The server binds *host* and
    *port*, or serves on *listener*, a socket already bound and listening (a master process
    binds once and hands the socket to each worker). *connections* caps how many connections
    are handled at once; *graceful_timeout* is how long a stop waits, in seconds, for requests
    in flight; *limits* bounds each request (see :class:`~.limits.Limits`).
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        listener: socket.socket | None = None,
        connections: int = 1000,
        graceful_timeout: float = 30.0,
        backlog: int = DEFAULT_BACKLOG,
        limits: Limits | None = None,
    ) -> None:
        if isinstance(connections, bool) or not isinstance(connections, int) or connections < 1:
            raise ValueError(
                f"connections must be a whole number of at least 1, not {connections!r}"
            )
        if not graceful_timeout >= 0:
            raise ValueError(f"graceful_timeout must be 0 or more seconds, not {graceful_timeout}")
        self.app = app
        self.host = host
        self.port = port
        self.graceful_timeout = graceful_timeout
        self.backlog = backlog
        self.limits = limits or Limits()
        self._listener = listener
        self._pool = Pool(connections)
        self._site: Site | None = None
        self._stream: StreamServer | None = None
        self._stopping: gevent.Greenlet[..., None] | None = None
        self._stopped = Event()

    @property
    def address(self) -> tuple[str, int]:
        """The host and port listened on; the real port once started with port 0."""
        if self._stream is None:
            return (self.host, self.port)
        return (self.host, self._port)

    @property
    def url(self) -> str:
        """``http://host:port`` of the listening socket."""
        return "http://" + format_address(*self.address)

    def start(self) -> None:
        """Bind the socket (unless given one) and start accepting connections, without blocking.

        Raises :class:`~microback.server.listener.ListenError` if the address cannot be used.
        """
        if self._stream is not None:
            raise RuntimeError("the server has already been started")
        if self._listener is not None:
            sock = prepare_listener(self._listener)
            sockname = sock.getsockname()
            if isinstance(sockname, tuple):
                self.host = str(sockname[0])
        else:
            sock = bind_listener(self.host, self.port, self.backlog)
        sockname = sock.getsockname()
        self._port = int(sockname[1]) if isinstance(sockname, tuple) else 0
        # Given here so that no request pays for resolving the host name.
        environ = base_environ(self.host, str(self._port))
        self._site = Site(app=self.app, limits=self.limits, environ=environ)
        self._stream = StreamServer(sock, self._serve_connection, spawn=self._pool)
        self._stream.start()
        server_logger.info("listening on %s", self.url)

    def _serve_connection(self, sock: socket.socket, address: Any) -> None:
        assert self._site is not None
        Connection(self._site, sock, address).serve()

    def serve_forever(self, *, signals: bool = True) -> None:
        """Start if needed and serve until a graceful stop ends.

        With *signals*, SIGTERM and SIGINT start the stop; otherwise only :meth:`stop` does.
        """
        handlers = (
            [gevent.signal_handler(sig, self._on_signal, sig) for sig in STOP_SIGNALS]
            if signals
            else []
        )
        try:
            if self._stream is None:
                self.start()
            self._stopped.wait()
        finally:
            for handler in handlers:
                handler.cancel()

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully, waiting up to *timeout* seconds (default ``graceful_timeout``).

        Returns once every connection is closed. Calling it again while a stop is running waits
        for that stop.
        """
        if self._stopping is None:
            self._stopping = gevent.spawn(self._stop, timeout)
        self._stopping.join()

    def _stop(self, timeout: float | None) -> None:
        if timeout is None:
            timeout = self.graceful_timeout
        if self._stream is not None:
            self._stream.close()
        if self._site is not None:
            self._site.connections.drain()
        busy = len(self._pool)
        if busy:
            server_logger.info(
                "stopping: waiting up to %gs for %d connection(s) in flight", timeout, busy
            )
        else:
            server_logger.info("stopping")
        if not self._pool.join(timeout=timeout):
            server_logger.warning(
                "%d connection(s) still busy after %gs; closing them", len(self._pool), timeout
            )
            self._pool.kill(block=True, timeout=1)
        server_logger.info("stopped")
        self._stopped.set()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._stopping is None:
            server_logger.info("received %s", name)
            self._stopping = gevent.spawn(self._stop, None)
        else:
            server_logger.warning("received %s again; closing all connections now", name)
            self._pool.kill(block=False)


def serve(
    app: WSGIApplication,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    connections: int = 1000,
    graceful_timeout: float = 30.0,
    limits: Limits | None = None,
) -> None:
    """Serve *app* on *host* and *port* until SIGTERM or SIGINT, then stop gracefully.

    Patch with ``gevent.monkey.patch_all()`` before importing the app's modules, or database
    drivers and ``threading.local`` state will not be cooperative. Raises
    :class:`~microback.server.listener.ListenError` if the address cannot be used.
    """
    Server(
        app,
        host=host,
        port=port,
        connections=connections,
        graceful_timeout=graceful_timeout,
        limits=limits,
    ).serve_forever()
