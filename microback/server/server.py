"""Run a WSGI app until a signal stops it, then stop gracefully.

The server is gevent's ``StreamServer`` accepting connections, each served by a
:class:`~.connection.Connection` in its own greenlet.

Its settings are one :class:`~.config.ServerConfig`. Two caps, because the two things they
bound cost very different amounts:

- ``connections`` (default 10,000), a gevent ``Pool``, bounds the open connections. A
  connection still sending its head, or idle in keep-alive, costs a greenlet, a parser and a
  file descriptor: a few kilobytes. While the pool is full the server stops accepting, and
  new connections wait in the kernel's accept queue (back-pressure, not collapse).
- ``max_concurrent_requests`` (default 1,000), a semaphore, bounds the requests inside the
  application: those use its memory, database connections and CPU. A request waits for a slot
  once its head is complete, and gives it back when its response is written.

With a single cap, as before, the connections that slowloris clients hold while dribbling their
heads counted against the same slots as the requests being served: 2,000 of them starved
every other client until the header timeout cut them off. Now they only fill the much larger
connection cap, and each is cut off by the header deadline (see :mod:`.limits`).

A graceful stop, on SIGTERM or SIGINT (Ctrl-C) or :meth:`Server.stop`:

0. tell the application the server is draining (``environ["microback.draining"]()`` turns
   true, so a readiness route answers 503) and, for ``drain_delay`` seconds (default 0), go
   on accepting and serving: a load balancer that polls readiness stops sending new
   connections here before the socket closes, instead of seeing them refused;
1. close the listening socket, so new connections are refused at once;
2. mark every response still to be sent with ``Connection: close``: each open connection
   serves one more request at most, and one idle closes at its keep-alive timeout (closing
   it at once would lose a request its client may be sending; see :mod:`.waiting`);
3. wait up to ``graceful_timeout`` seconds for the connections to finish;
4. cut off whatever is still running, and return.

A second signal during the wait skips to step 4. A worker process passes the signals it
handles to :meth:`Server.serve_forever` (SIGTERM only: its master handles Ctrl-C).

How many connections a server accepts in one turn of its event loop: up to
:data:`ACCEPT_IN_A_ROW`, every one queued. Taking one per turn (``max_accept = 1``) was
meant to make the workers of ``--workers N``, which share one listening socket and are all
woken when connections arrive, take turns, but it cost the tail: a turn of a loaded loop
lasts several milliseconds (~6 ms serving ``/db`` at 50 connections), so the last of 50
connections opened at once waited ~50 turns, and its first request answered in over 100 ms
while no request took 60 ms inside the server (benchmarks/server/README.md, "The /db tail").
Nor did it spread them: a worker with shorter turns took more (35/15 of wrk's 50, and 50/0
on a loaded host). Workers now keep score on their master's board (:mod:`.balance`): one
holding more connections than another lets that one accept. A server given
``multiprocess=True`` and no seat (another process manager's workers) still takes one per
turn. One socket per worker (``SO_REUSEPORT``) would let the kernel spread connections, but
a worker that stops (reload, graceful stop, a crash) would drop the connections queued on
its own socket.

One server may listen on several sockets (``--bind`` given more than once): each has its own
``StreamServer`` and base environ (port, scheme), and all share the pool, the registry of
idle connections and the request ids. With an ``ssl_context``, each connection's TLS
handshake runs in its own greenlet (see :mod:`.tls`).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import socket
import ssl
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event
from gevent.lock import BoundedSemaphore
from gevent.pool import Pool
from gevent.server import StreamServer

from .balance import BalancedStream, Seat
from .blocked import start_monitor
from .config import ServerConfig
from .connection import Connection
from .environ import base_environ
from .errors import RequestError
from .fdlimit import fit_connections
from .limits import Limits
from .listener import (
    Address,
    bind_listener,
    listener_address,
    listener_url,
    prepare_listener,
)
from .site import RequestIds, Site
from .tls import PlainHTTP, accept_tls
from .waiting import Connections

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

server_logger = logging.getLogger("microback.server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: Most connections a server accepts in one turn of its loop (gevent's default); the
#: connection cap (``--connections``) still stops accepting while it is full.
ACCEPT_IN_A_ROW = 100


class Server:
    """Serve one WSGI application on one or more sockets, in this process.

    Nothing happens until :meth:`start` or :meth:`serve_forever`. The server binds *host* and
    *port*, or serves on *listener* or *listeners*, sockets already bound and listening (a
    master process binds once and hands the sockets to each worker). *config* holds its
    settings (:class:`~.config.ServerConfig`; ``connections`` is taken as given here, while
    :func:`serve` and ``microback serve`` first fit it to the open file limit); keyword
    *settings* replace single fields of it (``Server(app, graceful_timeout=5)``).
    *multiprocess* is ``wsgi.multiprocess``: true when other processes serve the same app.
    *announce* logs a "listening on" line per socket. *seat* is a worker's place on its
    master's :class:`~.balance.AcceptBoard`: with it, a worker holding more connections than
    another lets that one accept.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        listener: socket.socket | None = None,
        listeners: Sequence[socket.socket] = (),
        config: ServerConfig | None = None,
        multiprocess: bool = False,
        announce: bool = True,
        seat: Seat | None = None,
        **settings: Any,
    ) -> None:
        self.config = _configured(config, settings)
        self.app = app
        self.host = host
        self.port = port
        self.multiprocess = multiprocess
        self.announce = announce
        self.seat = seat
        self._listeners = [*([listener] if listener is not None else []), *listeners]
        self._pool = Pool(self.config.connections)
        self._app_slots = BoundedSemaphore(self.config.max_concurrent_requests)
        self._connections = Connections()
        self._streams: list[StreamServer] = []
        self._addresses: list[Address] = []
        self._stopping: gevent.Greenlet[..., None] | None = None
        self._stopped = Event()

    @property
    def limits(self) -> Limits:
        return self.config.limits

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return self.config.ssl_context

    @property
    def address(self) -> tuple[str, int]:
        """The host and port listened on; the real port once started with port 0."""
        for address in self._addresses:
            if address.path is None:
                return (address.host, address.port)
        return (self.host, self.port)

    @property
    def url(self) -> str:
        """``http://host:port`` (``https`` with TLS) of the first TCP socket."""
        return self._url(Address(*self.address))

    @property
    def urls(self) -> list[str]:
        """Every socket listened on: ``http(s)://host:port`` or ``unix:/path``."""
        return [self._url(address) for address in self._addresses]

    def _url(self, address: Address) -> str:
        return listener_url(address, self.ssl_context is not None)

    def start(self) -> None:
        """Bind the socket (unless given some) and start accepting connections, without blocking.

        Raises :class:`~microback.server.listener.ListenError` if the address cannot be used.
        """
        if self._streams:
            raise RuntimeError("the server has already been started")
        if self.config.blocked_loop_threshold is not None:
            start_monitor(self.config.blocked_loop_threshold)
        if self._listeners:
            sockets = [prepare_listener(sock) for sock in self._listeners]
        else:
            sockets = [bind_listener(self.host, self.port, self.config.backlog)]
        scheme = "https" if self.ssl_context is not None else "http"
        request_ids = RequestIds()
        # The one server→app signal: a zero-argument callable in every request's environ.
        draining = partial(getattr, self._connections, "draining")
        for sock in sockets:
            address = listener_address(sock)
            if address.path is None:
                name, port = address.host, str(address.port)
            else:  # a Unix socket has no port; HTTP/1.0 without Host falls back to these
                name, port = "localhost", "443" if self.ssl_context is not None else "80"
            site = Site(
                app=self.app,
                limits=self.limits,
                # Given here so that no request pays for resolving the host name.
                environ=base_environ(
                    name, port, scheme, multiprocess=self.multiprocess, draining=draining
                ),
                connections=self._connections,
                request_ids=request_ids,
                app_slots=self._app_slots,
                slow_request=self.config.slow_request_threshold,
            )
            handle = partial(self._serve_connection, site)
            stream = self._stream(sock, handle)
            self._streams.append(stream)
            self._addresses.append(address)
        for stream in self._streams:
            stream.start()
        if self.announce:
            for url in self.urls:
                server_logger.info("listening on %s", url)

    def _stream(self, sock: socket.socket, handle: Any) -> StreamServer:
        if self.seat is not None:  # a worker keeping score: it accepts only its share
            stream: StreamServer = BalancedStream(sock, handle, spawn=self._pool, seat=self.seat)
            stream.max_accept = ACCEPT_IN_A_ROW
        else:
            stream = StreamServer(sock, handle, spawn=self._pool)
            # Processes sharing the socket without a board take turns; one alone takes all.
            stream.max_accept = 1 if self.multiprocess else ACCEPT_IN_A_ROW
        return stream

    def _serve_connection(self, site: Site, sock: socket.socket, address: Any) -> None:
        if self._pool.full():  # this one took the last place: free some for the next clients
            self._connections.make_room()
        if self.ssl_context is not None:
            client = str(address[0]) if isinstance(address, tuple) else ""
            try:
                secured = accept_tls(sock, self.ssl_context, client, self.limits.header_timeout)
            except PlainHTTP:
                error = RequestError(400, "plain HTTP sent to the HTTPS port; use https://")
                Connection(site, sock, address).refuse(error)
                return
            if secured is None:
                return
            sock = secured
        Connection(site, sock, address).serve()

    def serve_forever(self, *, signals: bool | Sequence[int] = True) -> None:
        """Start if needed and serve until a graceful stop ends.

        *signals* that start the stop: ``True`` for SIGTERM and SIGINT, or a list of them;
        with ``False`` only :meth:`stop` does.
        """
        if signals is True:
            signals = STOP_SIGNALS
        elif signals is False:
            signals = ()
        handlers = [gevent.signal_handler(sig, self._on_signal, sig) for sig in signals]
        try:
            if not self._streams:
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
            timeout = self.config.graceful_timeout
        self._connections.drain()
        if self.config.drain_delay:
            server_logger.info(
                "draining: readiness answers 503; accepting for %gs more", self.config.drain_delay
            )
            gevent.sleep(self.config.drain_delay)
        for stream in self._streams:
            stream.close()
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


def _configured(config: ServerConfig | None, settings: dict[str, Any]) -> ServerConfig:
    """*config* (or the defaults) with the fields named in *settings* replaced."""
    config = config or ServerConfig()
    if settings.get("limits", config.limits) is None:
        settings["limits"] = Limits()  # "the default limits", as before ServerConfig
    try:
        return dataclasses.replace(config, **settings) if settings else config
    except TypeError:
        unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(ServerConfig)})
        raise TypeError(f"unknown server setting(s): {', '.join(unknown)}") from None


def serve(
    app: WSGIApplication,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServerConfig | None = None,
    **settings: Any,
) -> None:
    """Serve *app* on *host* and *port* until SIGTERM or SIGINT, then stop gracefully.

    *config* and keyword *settings* as for :class:`Server`. Patch with
    ``gevent.monkey.patch_all()`` before importing the app's modules, or database drivers and
    ``threading.local`` state will not be cooperative. Raises the process's open file limit
    and fits ``connections`` to it, as ``microback serve`` does
    (:func:`~.fdlimit.fit_connections`). Raises
    :class:`~microback.server.listener.ListenError` if the address cannot be used.
    """
    config = _configured(config, settings)
    config = dataclasses.replace(config, connections=fit_connections(config.connections))
    Server(app, host=host, port=port, config=config).serve_forever()
