"""Run a WSGI app until a signal stops it, then stop gracefully.

A graceful stop, on SIGTERM or SIGINT (Ctrl-C) or :meth:`Server.stop`:

1. close the listening socket, so new connections are refused at once;
2. close idle keep-alive connections, and mark every response still to be sent with
   ``Connection: close``;
3. wait up to ``graceful_timeout`` seconds for the requests in flight to finish;
4. cut off whatever is still running, and return.

A second signal during the wait skips to step 4.

gevent.pywsgi's own ``stop()`` is not used: called from a signal handler during
``serve_forever()`` it waits only ``stop_timeout`` (1 s) and then kills requests in flight, and it
cannot tell idle keep-alive connections from busy ones, so they hold it for the whole timeout.
Concurrency is capped by a gevent ``Pool`` of ``connections`` slots; while it is full, new
connections wait in the kernel's accept queue.
"""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import LoggingLogAdapter
from gevent.pywsgi import WSGIServer as _PywsgiServer

from .connections import Connections
from .handler import Handler
from .listener import DEFAULT_BACKLOG, bind_listener, format_address

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

server_logger = logging.getLogger("microback.server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class WSGIServer(_PywsgiServer):
    """gevent.pywsgi's server, holding the connection registry its handlers share."""

    handler_class = Handler

    def __init__(self, *args: Any, connections: Connections, **kwargs: Any) -> None:
        self.connections = connections
        super().__init__(*args, **kwargs)


class Server:
    """Serve one WSGI application on one address, in this process.

    Nothing happens until :meth:`start` or :meth:`serve_forever`. *connections* caps how many
    connections are handled at once; *graceful_timeout* is how long a stop waits, in seconds,
    for requests in flight.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        connections: int = 1000,
        graceful_timeout: float = 30.0,
        backlog: int = DEFAULT_BACKLOG,
    ) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, not {connections}")
        if graceful_timeout < 0:
            raise ValueError(f"graceful_timeout must be 0 or more seconds, not {graceful_timeout}")
        self.app = app
        self.host = host
        self.port = port
        self.graceful_timeout = graceful_timeout
        self.backlog = backlog
        self._pool = Pool(connections)
        self._connections = Connections()
        self._wsgi: WSGIServer | None = None
        self._stopping: gevent.Greenlet[..., None] | None = None
        self._stopped = Event()

    @property
    def address(self) -> tuple[str, int]:
        """The host and port listened on; the real port once started with port 0."""
        if self._wsgi is None:
            return (self.host, self.port)
        sockname = self._wsgi.address
        return (self.host, int(sockname[1]))

    @property
    def url(self) -> str:
        """``http://host:port`` of the listening socket."""
        return "http://" + format_address(*self.address)

    def start(self) -> None:
        """Bind the socket and start accepting connections, without blocking.

        Raises :class:`~microback.server.listener.ListenError` if the address cannot be used.
        """
        if self._wsgi is not None:
            raise RuntimeError("the server has already been started")
        sock = bind_listener(self.host, self.port, self.backlog)
        port = sock.getsockname()[1]
        self._wsgi = WSGIServer(
            sock,
            self.app,
            spawn=self._pool,
            connections=self._connections,
            log=None,
            error_log=LoggingLogAdapter(server_logger, logging.ERROR),
            # Given here so that pywsgi does not resolve the host name (a DNS query) at start.
            environ={"SERVER_NAME": self.host, "SERVER_PORT": str(port)},
        )
        self._wsgi.start()
        server_logger.info("listening on %s", self.url)

    def serve_forever(self) -> None:
        """Start if needed and serve until SIGTERM, SIGINT or :meth:`stop` ends a graceful stop."""
        handlers = [gevent.signal_handler(sig, self._on_signal, sig) for sig in STOP_SIGNALS]
        try:
            if self._wsgi is None:
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
        if self._wsgi is not None:
            self._wsgi.close()
        self._connections.drain()
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
) -> None:
    """Serve *app* on *host* and *port* until SIGTERM or SIGINT, then stop gracefully.

    Patch with ``gevent.monkey.patch_all()`` before importing the app's modules, or database
    drivers and ``threading.local`` state will not be cooperative. Raises
    :class:`~microback.server.listener.ListenError` if the address cannot be used.
    """
    Server(
        app, host=host, port=port, connections=connections, graceful_timeout=graceful_timeout
    ).serve_forever()
