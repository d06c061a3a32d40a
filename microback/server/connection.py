"""Serve the requests of one client connection: keep-alive, pipelining, timeouts, errors.

The loop: ``recv()`` what the client sent, let the parser queue the complete heads, answer
each queued request in order (pipelined requests are answered from the same buffer), then
yield to the event loop once and read again. Yielding once per batch of responses rather than
after every request made a measured difference: the loop then serves every ready connection
in one pass, instead of each ``recv()`` failing with EAGAIN and parking its greenlet; without
any yield a busy connection keeps the loop and the p99 latency of the others grows to
hundreds of milliseconds.

Responses go out with a plain ``send()`` on the real socket first: a small response leaves in
that one system call, and only the remainder (if the kernel buffer is full) goes through
gevent's ``sendall()``, which waits cooperatively but costs an extra ``getsockopt`` each time.

A request the parser refuses is answered with its status and the connection closed; the
application is never called for it. An exception escaping the application is logged with its
traceback (never the environ, which holds cookies and credentials) and answered 500 if
nothing was sent yet; otherwise the connection is closed, which is the only way left to tell
the client that the response is incomplete.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import gevent
import gevent.socket
from greenlet import getcurrent

from ._gevent import wait_readable, wrapped_socket
from .access_log import access_logger, log_access
from .body import EMPTY_BODY, EmptyBody, RequestBody
from .context import binder
from .environ import connection_environ, request_environ
from .errors import ClientError, RequestError
from .limits import Limits
from .logs import query_masker
from .parsing import Message, RequestParser
from .response import CONTINUE, ResponseWriter, refusal_response
from .slow import log_slow_request
from .waiting import has_pending_input, wake_reader, wake_with_eof

if TYPE_CHECKING:
    from .site import Site

server_logger = logging.getLogger("microback.server")

RECV_SIZE = 65536
#: Unread request body a connection reads and drops to stay open after its response.
DRAIN_LIMIT = 65536
#: Bytes of a request body read before the request takes a place in the application.
PREREAD_LIMIT = 16384
#: After refusing a request, how long to read and drop what the client still sends, so the
#: kernel does not answer that data with a reset that destroys the response in flight.
LINGER_SECONDS = 1.0

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:+/=@-]{1,128}").fullmatch
_INTERNAL_ERROR = RequestError(500, "the application failed")
_EVICTED = RequestError(
    503, "the server is at its connection limit and this request head arrived too slowly"
)


class ConnectionLost(OSError):
    """The client went away or stopped reading while its response was being sent.

    *reason* says which, as the access line does: ``timeout`` or ``client-disconnect``.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Connection:
    """One client connection, from accept to close."""

    def __init__(self, site: Site, sock: socket.socket, address: Any) -> None:
        self.site = site
        self.sock = sock
        # The real, non-blocking socket under gevent's wrapper, for the first send() attempt;
        # only for a plain gevent socket (a TLS socket must encrypt what it sends).
        self._raw: socket.socket | None = wrapped_socket(sock)
        self.client = str(address[0]) if isinstance(address, tuple) else ""
        self.environ = connection_environ(site.environ, address)
        self.parser = RequestParser(site.limits)
        self._timeout: float | None = -1.0
        self._fresh = True  # no byte received yet
        self._accepted = time.monotonic()
        self._head_bytes = 0  # of the head being received
        self._evicted = False
        self._body_waited = 0.0  # seconds spent waiting for the current request's body
        self._eof = False
        self._message: Message | None = None
        self._input: RequestBody | EmptyBody | None = None
        self._response: ResponseWriter | None = None
        self._cut_short: str | None = None  # why the response in progress was cut short
        self._keepalive_timer: Any = None  # see _wait_keepalive

    # -- the loop

    def serve(self) -> None:
        """Answer requests until the client leaves, a request fails, or the server stops."""
        self._bind = binder()  # in the greenlet that serves the connection
        try:
            self._serve()
        except ConnectionLost:
            pass
        except OSError as exc:  # a reset while reading: the client is gone
            server_logger.debug("connection from %s lost: %s", self.client, exc)
        finally:
            self._close()

    def _serve(self) -> None:
        ready = self.parser.ready
        while True:
            if not ready:
                if self.parser.stopped or not self._receive():
                    return
                continue
            message = ready.popleft()
            if message.error is not None:
                # A refused head, or a body already known to be bad (a malformed chunk, too
                # large) before the app was called. A fault found later reaches the app as a
                # ClientError from wsgi.input, and gets the same answer.
                self._refuse(message.error, message)
                return
            if not self._handle(message):
                return
            if not ready:
                gevent.sleep(0)  # once per batch of responses; see the module docstring

    def _settimeout(self, seconds: float | None) -> None:
        if self._timeout != seconds:
            self.sock.settimeout(seconds)
            self._timeout = seconds

    def _receive(self) -> bool:
        """Read more of the next request head; return False when the connection should end."""
        parser = self.parser
        limits = self.site.limits
        idle = not parser.in_head
        remaining = 0.0
        if idle:
            self._head_bytes = 0
        else:
            remaining = parser.head_started + limits.header_timeout - time.monotonic()
            if remaining <= 0:
                self._refuse(_head_timeout(limits), None)
                return False
        raw = self._raw
        data: bytes | None = None
        if raw is not None:
            # Most reads find the next request already there (the loop served the other
            # connections meanwhile): read it without waiting, so without the timeout, the
            # registry and gevent's wrapper. The deadline above was checked all the same.
            try:
                data = raw.recv(RECV_SIZE)
            except BlockingIOError:
                data = None
        if data is None:
            data = self._wait_and_receive(idle, remaining)
            if data is None:
                return False
        if self._evicted:
            self._refuse(_EVICTED, None)
            # No lingering over what the client still sends: the place is for another client.
            self._eof = True
            return False
        if not data:
            self._eof = True
            return False
        self._fresh = False
        self._head_bytes += len(data)
        parser.feed(data)
        return True

    def _wait_and_receive(self, idle: bool, remaining: float) -> bytes | None:
        """Wait for the client: idle up to the keep-alive (or, before the first request, the
        header) timeout, within a head the *remaining* seconds of its deadline. None when the
        wait ran out."""
        limits = self.site.limits
        parser = self.parser
        # Between requests on a plain socket, the keep-alive timeout is the connection's own
        # timer, started and stopped around each wait; otherwise the socket's timeout, which
        # gevent makes a new timer of for each wait.
        keepalive = idle and not self._fresh and self._raw is not None
        if keepalive:
            # A stopping server waits here as usual, up to the keep-alive timeout, and answers
            # the request that comes (with Connection: close): the client may be sending it
            # right now, and one that does not retry would lose it to a close.
            self._settimeout(None)
        elif idle:
            self._settimeout(limits.header_timeout if self._fresh else limits.keepalive_timeout)
        else:
            self._settimeout(remaining)
        # Registered while waiting, so that a full server can close it for a new client.
        connections = self.site.connections
        waiting = connections.idle if idle and not self._fresh else connections.heads
        waiting[self] = None
        try:
            if self._raw is not None:
                # _receive has just tried the real socket: wait, then read it once more.
                if keepalive:
                    self._wait_keepalive()
                else:
                    wait_readable(self.sock)
                with contextlib.suppress(BlockingIOError):  # woken with nothing to read
                    return self._raw.recv(RECV_SIZE)
                if not idle:  # wait again (rare), but not past the head's deadline
                    deadline = parser.head_started + limits.header_timeout
                    self._settimeout(max(deadline - time.monotonic(), 0.001))
                elif keepalive:
                    self._settimeout(limits.keepalive_timeout)
            return self.sock.recv(RECV_SIZE)
        except TimeoutError:
            if parser.in_head:
                self._refuse(_head_timeout(limits), None)
            return None  # an idle connection past its timeout closes without a word
        finally:
            waiting.pop(self, None)

    def _wait_keepalive(self) -> None:
        """Wait for the next request up to the keep-alive timeout (else TimeoutError)."""
        timer = self._keepalive_timer
        if timer is None:
            # One libev timer for the connection's life, restarted for each wait.
            timer = gevent.get_hub().loop.timer(self.site.limits.keepalive_timeout)
            self._keepalive_timer = timer
        timer.start(getcurrent().throw, TimeoutError)
        try:
            wait_readable(self.sock)
        finally:
            timer.stop()

    def _fill_body(self, message: Message) -> None:
        """Read more of *message*'s body (for ``wsgi.input``); failures go on the message.

        Within the body timeout, and within the minimum body rate (see :mod:`.limits`): the
        wait ends when the bytes received so far would fall below the rate.
        """
        limits = self.site.limits
        timeout = limits.body_timeout
        rate = limits.min_body_rate
        if rate:
            # The body has reached body_received bytes, enough for this many seconds waited.
            left = max(limits.body_rate_grace, message.body_received / rate) - self._body_waited
            if left <= 0:
                message.error = _too_slow(message, self._body_waited, rate)
                return
            timeout = min(timeout, left)
        self._settimeout(timeout)
        started = time.monotonic()
        try:
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            self._body_waited += time.monotonic() - started
            if timeout < limits.body_timeout:
                message.error = _too_slow(message, self._body_waited, rate)
            else:
                message.error = ClientError(
                    408, f"no request body received for {limits.body_timeout:g} s"
                )
            return
        except OSError:
            data = b""
        self._body_waited += time.monotonic() - started
        if not data:
            self._eof = True
            message.error = ClientError(400, "connection closed before the end of the body")
            return
        self.parser.feed(data)

    # -- one request

    def _handle(self, message: Message) -> bool:
        """Run the application for *message* and send its response; return keep-alive."""
        site = self.site
        started = time.monotonic()
        given = message.request_id  # the client's, if it is a valid one
        if given is not None and _REQUEST_ID(given):
            request_id = given.decode("ascii")
        else:
            request_id = site.request_ids.next()
        wsgi_input: RequestBody | EmptyBody
        if message.complete and not message.body:
            wsgi_input = EMPTY_BODY
            before_head = None  # nothing can go wrong with a body that is not there
        else:
            send_continue = self._send_continue if message.expect_continue else None
            wsgi_input = RequestBody(message, self._fill_body, send_continue)
            before_head = self._check_request
        environ = request_environ(self.environ, message, wsgi_input)
        environ["microback.request_id"] = request_id
        response = ResponseWriter(
            self._send,
            head_request=message.method == "HEAD",
            keep_alive=message.keep_alive and not message.upgrade,
            version=message.version,
            extra_headers=b"X-Request-ID: " + request_id.encode("latin-1") + b"\r\n",
            server=site.connections,
            before_head=before_head,
        )
        self._message, self._input, self._response = message, wsgi_input, response
        self._cut_short = None
        self._body_waited = 0.0
        if not message.complete and not message.expect_continue:
            # Read a small body before taking a place in the app, as a head is, so that
            # clients sending bodies slowly hold connections, never the app's places. Not
            # with Expect: 100-continue, where the client waits for the app to ask.
            while (
                not message.complete
                and message.error is None
                and len(message.body) < PREREAD_LIMIT
            ):
                self._fill_body(message)
            if message.error is not None:
                self._refuse(message.error, message)
                return False
        keep_alive = True
        slots = site.app_slots
        slots.acquire()  # waits while the app already runs --max-concurrent-requests requests
        bind = self._bind
        bind(environ)  # log records and blocked-loop warnings name this request
        app_started = time.monotonic()
        try:
            result = site.app(environ, response.start_response)
            try:
                _write(result, response)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except ConnectionLost:
            keep_alive = False
        except Exception as exc:
            keep_alive = self._app_failed(exc, message, response, request_id)
            if response.head_sent and self._cut_short is None:
                self._cut_short = "app-error"
        except BaseException:  # GreenletExit: the server stopped before the response ended
            self._log(message, environ, response, started, request_id, "shutdown")
            raise
        finally:
            bind(None)
            slots.release()
        if site.slow_request is not None:
            ended = time.monotonic()
            if ended - started >= site.slow_request:
                log_slow_request(
                    environ, response.code, ended - started, ended - app_started, request_id
                )
        if response.short and self._cut_short is None:
            self._cut_short = "app-error"
        if response.close or message.upgrade or message.error is not None:
            keep_alive = False
        elif keep_alive and not message.complete:
            keep_alive = wsgi_input.discard(DRAIN_LIMIT)
        if access_logger.isEnabledFor(logging.INFO):
            self._log(message, environ, response, started, request_id, self._cut_short)
        # What the response said, not whether the server is stopping now: a response sent
        # just before a stop began promised the client that the connection stays open.
        return keep_alive

    def _log(
        self,
        message: Message,
        environ: dict[str, Any],
        response: ResponseWriter,
        started: float,
        request_id: str,
        incomplete: str | None,
    ) -> None:
        # The client as the application saw it: a trusted proxy's X-Forwarded-For (or a
        # middleware such as ProxyFix) rewrites REMOTE_ADDR in this environ.
        log_access(
            environ.get("REMOTE_ADDR") or "",
            message.method,
            message.target.decode("latin-1"),
            "HTTP/" + message.version,
            response.code,
            response.body_bytes,
            time.monotonic() - started,
            request_id,
            peer=self.client,
            incomplete=incomplete,
        )

    def _check_request(self) -> None:
        # Called as the response head is about to go out: a body that failed while the app
        # read it (too slow, too large, malformed) gets the server's answer, not the app's.
        message = self._message
        if message is None:
            return
        if message.error is not None:
            raise message.error
        if self._input is not None and self._response is not None and self._input.continue_pending:
            # The client waits for 100 Continue before sending its body, and will not get it:
            # the body will never arrive, so the connection cannot carry another request.
            self._response.close = True

    def _app_failed(
        self, exc: Exception, message: Message, response: ResponseWriter, request_id: str
    ) -> bool:
        error = message.error
        if isinstance(exc, RequestError) and error is not None:
            _log_refusal(self.client, error, request_id)
        else:
            error = _INTERNAL_ERROR
            server_logger.error(
                "error in the WSGI application while serving %r (%s)",
                f"{message.method} {_printable_target(message.target)}",
                request_id,
                exc_info=exc,
            )
        if response.head_sent:
            response.close = True
            return False
        response.code = error.status
        response.close = True
        self._send(refusal_response(error.status_line, error.reason, request_id))
        return False

    # -- sending and closing

    def _send(self, data: bytes) -> None:
        raw = self._raw
        view: bytes | memoryview = data
        if raw is not None:
            try:
                sent = raw.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise self._lost(f"sending to {self.client}: {exc}", "client-disconnect") from exc
            if sent == len(data):
                return
            view = memoryview(data)[sent:]
        # The kernel buffer is full: wait, but no longer than the body timeout for the client
        # to take more (set here, not per request: most responses never get this far).
        self._settimeout(self.site.limits.body_timeout)
        try:
            self.sock.sendall(view)
        except TimeoutError as exc:
            raise self._lost(f"{self.client} stopped reading the response", "timeout") from exc
        except OSError as exc:
            raise self._lost(f"sending to {self.client}: {exc}", "client-disconnect") from exc

    def _lost(self, message: str, reason: str) -> ConnectionLost:
        # Kept on the connection too: the application may catch the exception from its write().
        self._cut_short = reason
        return ConnectionLost(message, reason)

    def _send_continue(self) -> None:
        self._send(CONTINUE)

    def _refuse(self, error: RequestError, message: Message | None) -> None:
        """Answer a request the server will not pass to the application, then close."""
        request_id = self.site.request_ids.next()
        if message is not None and message.request_id and _REQUEST_ID(message.request_id):
            request_id = message.request_id.decode("ascii")
        _log_refusal(self.client, error, request_id)
        try:
            self._send(refusal_response(error.status_line, error.reason, request_id))
        except ConnectionLost:
            pass
        finally:
            log_access(
                self.client,
                message.method if message is not None else "",
                message.target.decode("latin-1") if message is not None else "",
                "HTTP/" + message.version if message is not None and message.method else "",
                error.status,
                0,
                0.0,
                request_id,
            )

    def _linger(self) -> None:
        # Closing a socket with unread input makes the kernel send a reset, and a reset can
        # destroy the response still on its way to the client. Stop writing, and read what
        # the client still sends until it closes (or LINGER_SECONDS pass).
        if self._eof or not has_pending_input(self.sock):
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            dropped = 0
            while (left := deadline - time.monotonic()) > 0 and dropped < 16 * RECV_SIZE:
                self.sock.settimeout(left)
                data = self.sock.recv(RECV_SIZE)
                if not data:
                    break
                dropped += len(data)
        except OSError:
            pass

    def close_if_idle(self) -> bool:
        """Wake the ``recv()`` waiting for the next request with an end-of-file."""
        if has_pending_input(self.sock):
            return False
        wake_with_eof(self.sock)
        return True

    def head_progress(self, now: float) -> tuple[float, int]:
        """Seconds since the head being received began, and its bytes received so far."""
        since = self._accepted if self._fresh else self.parser.head_started
        return now - since, self._head_bytes

    def evict(self) -> None:
        """Wake the ``recv()`` waiting for more of a head: it answers 503, then closes."""
        self._evicted = True
        wake_reader(self.sock)

    def refuse(self, error: RequestError) -> None:
        """Answer *error* without reading a request (plain HTTP on a TLS port), then close."""
        try:
            self._refuse(error, None)
        finally:
            self._close()

    def _close(self) -> None:
        if self._keepalive_timer is not None:
            self._keepalive_timer.close()
        if self._evicted:
            self.site.connections.evicting -= 1  # whichever way the connection ended
        if not self._eof:
            self._linger()
        with contextlib.suppress(OSError):
            self.sock.close()


def _write(result: Iterable[bytes], response: ResponseWriter) -> None:
    """Send the application's body: at once if it is a list or tuple, else piece by piece."""
    if not response.head_sent and type(result) in (list, tuple):
        items: Any = result
        if len(items) == 1:
            whole = items[0]
        elif not items:
            whole = b""
        else:
            whole = b"".join(items)
        if type(whole) is not bytes:
            raise TypeError(f"WSGI body chunks must be bytes, not {type(whole).__name__}")
        response.finish(whole)
        return
    write = response.write
    for chunk in result:
        write(chunk)
    response.finish()


def _log_refusal(client: str, error: RequestError, request_id: str) -> None:
    # At debug, as gunicorn logs invalid requests: its access line already records every
    # refusal with its status, and a client sending junk must not fill the server log (#21).
    server_logger.debug("request from %s refused: %s (%s)", client, error, request_id)
    if error.detail:  # the parser's own words: for debugging, never for the client
        server_logger.debug("request %s: the parser said: %s", request_id, error.detail)


def _too_slow(message: Message, waited: float, rate: int) -> ClientError:
    received = message.body_received
    return ClientError(
        408,
        f"request body received at {received / waited if waited else 0:.0f} bytes/s "
        f"({received} bytes in {waited:.1f} s), slower than the minimum of {rate} bytes/s",
    )


def _head_timeout(limits: Limits) -> RequestError:
    return RequestError(408, f"request head not received within {limits.header_timeout:g} s")


def _printable_target(target: bytes) -> str:
    text = query_masker().target(target.decode("latin-1"))
    if len(text) > 200:
        text = text[:200] + "..."
    return text if text.isprintable() else repr(text)
