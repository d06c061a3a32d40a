"""The per-connection request handler: gevent.pywsgi's, plus graceful stop and our logging.

What it changes in ``gevent.pywsgi.WSGIHandler``:

- While waiting for a request line the connection counts as idle (see ``connections.py``); a
  stopping server closes it at once instead of waiting for the client to go away.
- Once the server is draining, responses carry ``Connection: close`` and the connection is
  closed after the response in progress.
- Each request is logged as one line on ``microback.access`` with body bytes and duration.
- An exception escaping the app is logged on ``microback.server`` with its traceback but without
  the WSGI environ: gevent's default prints the environ, which holds request headers (cookies,
  authorization).

It overrides only public pywsgi methods.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gevent import GreenletExit
from gevent.pywsgi import WSGIHandler

from .access_log import log_access
from .connections import Connections, has_pending_input

if TYPE_CHECKING:
    from .lifecycle import WSGIServer

server_logger = logging.getLogger("microback.server")


_INTERNAL_ERROR = b"Internal Server Error"


class Handler(WSGIHandler):
    """Serve the requests of one client connection, keep-alive included."""

    server: WSGIServer

    #: Response body bytes of the current request (pywsgi counts headers too).
    body_bytes = 0

    @property
    def connections(self) -> Connections:
        return self.server.connections

    def read_requestline(self) -> str:
        connections = self.connections
        if connections.draining and not has_pending_input(self.socket):
            return ""  # stopping: read nothing more; an empty line ends the connection
        connections.idle.add(self)
        try:
            line: str = super().read_requestline()
        finally:
            connections.idle.discard(self)
        return line

    def close_if_idle(self) -> None:
        """Wake the greenlet blocked on the next request line with an end-of-file."""
        sock = getattr(self, "socket", None)  # pywsgi deletes it once the connection ends
        if sock is None or has_pending_input(sock):
            return
        with contextlib.suppress(OSError):  # already closed by the client
            sock.shutdown(socket.SHUT_RDWR)

    def handle_one_request(self) -> Any:
        self.body_bytes = 0
        result = super().handle_one_request()
        if result is True and self.connections.draining:
            return None  # close after the response in flight when the stop began
        return result

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> Any:
        if self.connections.draining and not status.startswith("101"):
            headers = [(name, value) for name, value in headers if name.lower() != "connection"]
            headers.append(("Connection", "close"))
        return super().start_response(status, headers, exc_info)

    def write(self, data: bytes) -> None:
        super().write(data)
        self.body_bytes += len(data)

    def log_request(self) -> None:
        address = self.client_address
        client = address[0] if isinstance(address, tuple) else str(address or "")
        duration = (self.time_finish - self.time_start) if self.time_finish else 0.0
        log_access(client, self.requestline or "", self._status_code(), self.body_bytes, duration)

    def _status_code(self) -> str:
        status = self.status
        if isinstance(status, bytes):
            return status[:3].decode("latin-1")
        if isinstance(status, str) and status[:3].isdigit():
            return status[:3]
        return "-"  # the connection broke before a status line was sent

    def log_error(self, msg: str, *args: object) -> None:
        # pywsgi reports malformed requests here, prefixed with a socket repr; keep the message.
        try:
            message = msg % args if args else msg
        except (TypeError, ValueError):
            message = f"{msg!r} {args!r}"
        server_logger.warning("bad request: %s", message)

    def handle_error(
        self,
        t: type[BaseException] | None,
        v: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if v is not None and not isinstance(v, GreenletExit):
            server_logger.error(
                "error in the WSGI application while serving %r", self.requestline, exc_info=v
            )
        del t, v, tb
        if self.response_length:
            # Part of the response is out: the client can only learn of the error by the close.
            self.close_connection = True
            return
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(_INTERNAL_ERROR))),
            ("Connection", "close"),
        ]
        try:
            self.start_response("500 Internal Server Error", headers)
            self.write(_INTERNAL_ERROR)
        except OSError:
            self.close_connection = True
