"""Write a WSGI response: check what the application passes, frame it, send it in few calls.

:meth:`ResponseWriter.start_response` checks the status and headers at once, so a bad header fails
in the application's own call with its traceback: a name that is not an RFC 9110 token, a
value with CR, LF or NUL (header injection; never split into two headers), a value that is not
latin-1, a Content-Length that is not digits — each an :class:`InvalidResponse`, answered 500
by the server if the application lets it escape.

Framing belongs to the server: the application's ``Transfer-Encoding``, ``Connection`` and
``Keep-Alive`` headers are replaced (``Connection: close`` from the application is honoured).
A body of known length (a list, the common case) gets ``Content-Length`` and goes out with the
status line and headers in one ``send``; an iterable of unknown length is sent chunked on
HTTP/1.1 and closes the connection on HTTP/1.0. HEAD responses and 1xx/204/304 carry no body.
A body longer than the application's Content-Length is cut there, a shorter one closes the
connection — the client must never read one response's bytes as the start of the next.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from types import TracebackType
from typing import Protocol

from ..header_defaults import DEFAULT_HEADERS

server_logger = logging.getLogger("microback.server")

_STATUS = re.compile(r"[1-9][0-9]{2}(?: [^\r\n\x00]*)?").fullmatch
_BAD_VALUE = re.compile(r"[\r\n\x00]").search
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch

# Response headers the server owns or supplies; compared lower-cased.
_HANDLED = frozenset(
    (
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "date",
        "server",
        "x-request-id",
    )
)
# Header lines already checked and encoded, by the application's (name, value) pair, with
# the length a Content-Length line gives. Most responses repeat the same few lines (the
# content type, the security headers, the length of a fixed answer), and checking and
# encoding each one was a sixth of a small request's cost in the server. Bounded, and
# Set-Cookie lines are never kept: they differ on every response.
_LINES: dict[tuple[str, str], tuple[bytes, int | None]] = {}
_LINES_MAX = 2048
_LINE_MAX = 256
_STATUS_LINES: dict[str, bytes] = {}
_STATUS_LINES_MAX = 256

_DROPPED = frozenset(("transfer-encoding", "connection", "keep-alive"))

SERVER_HEADER = b"Server: microback\r\n"
# The security headers a microback App gives its own errors with its default settings: the
# server's refusals get them too (it cannot see an app's settings; see header_defaults).
_SECURITY_HEADERS = "".join(f"{name}: {value}\r\n" for name, value in DEFAULT_HEADERS)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]


class Draining(Protocol):
    """Tells whether the server is stopping (then every response closes its connection)."""

    draining: bool


class InvalidResponse(ValueError):
    """The application's status or headers cannot be sent as they are."""


_date_second = 0
_date_line = b""


def date_header() -> bytes:
    """``Date: ...\\r\\n`` for the current second (formatted once a second)."""
    global _date_second, _date_line
    now = int(time.time())
    if now != _date_second:
        _date_line = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        _date_second = now
    return _date_line


def refusal_response(status_line: str, reason: str, request_id: str | None = None) -> bytes:
    """A complete ``Connection: close`` response with a one-line plain-text body.

    It carries the default security headers (``nosniff``, no framing, ...), as the app's own
    error pages do.
    """
    body = f"{status_line}: {reason}\n".encode("latin-1", "replace")
    extra = f"X-Request-ID: {request_id}\r\n" if request_id else ""
    head = (
        f"HTTP/1.1 {status_line}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{_SECURITY_HEADERS}{extra}"
    ).encode("latin-1")
    return head + date_header() + SERVER_HEADER + b"\r\n" + body


class ResponseWriter:
    """The response to one request, from ``start_response`` to the last byte.

    *send* writes bytes to the client. *head_request* suppresses the body; *keep_alive* is
    what the request allows; *version* is the request's HTTP version; *extra_headers* are
    encoded header lines the server adds (an ``X-Request-ID`` line, dropped if the application
    sets its own). *before_head* is called just before the head is sent, and may raise to
    replace the application's response (a request body that failed while it was read).
    """

    __slots__ = (
        "_before_head",
        "_extra",
        "_head_request",
        "_send",
        "_server",
        "_version",
        "body_bytes",
        "chunked",
        "close",
        "code",
        "content_length",
        "has_body",
        "head",
        "head_sent",
        "short",
        "status",
    )

    def __init__(
        self,
        send: Callable[[bytes], None],
        *,
        head_request: bool,
        keep_alive: bool,
        version: str,
        extra_headers: bytes,
        server: Draining,
        before_head: Callable[[], None] | None,
    ) -> None:
        self._send = send
        self._server = server
        self._before_head = before_head
        self._head_request = head_request
        self._version = version
        self._extra = extra_headers
        self.close = not keep_alive
        self.status: str | None = None
        self.code = 0
        #: The status allows a body (not 1xx, 204 or 304); set by start_response.
        self.has_body = False
        self.head = b""  # status line and the application's headers, checked and encoded
        self.content_length: int | None = None
        self.head_sent = False
        self.chunked = False
        self.body_bytes = 0
        #: The application ended its body before its own Content-Length.
        self.short = False

    # -- what the application calls

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
        /,
    ) -> Callable[[bytes], object]:
        """PEP 3333 ``start_response``: check *status* and *headers*; return ``write``."""
        if exc_info is not None and exc_info[1] is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called twice without exc_info")
        head = _STATUS_LINES.get(status) if type(status) is str else None
        if head is None:
            head = _status_line(status)
        lines = [head]
        length = None
        close = own_date = own_server = own_request_id = False
        remembered = _LINES
        try:
            for header in headers:
                try:
                    known = remembered.get(header)
                except TypeError:  # a list, not a tuple: unhashable, but still a pair
                    known = None
                if known is not None:
                    lines.append(known[0])
                    if known[1] is not None:
                        length = known[1]
                    continue
                name, value = header
                lowered, line = _encode_line(name, value)
                if lowered in _HANDLED:
                    if lowered == "content-length":
                        if not value.isdigit() or not value.isascii():
                            raise InvalidResponse(f"invalid Content-Length {value!r}")
                        length = int(value)
                        _remember(header, line, length)
                    elif lowered == "connection":
                        close = "close" in value.lower()
                    elif lowered == "date":
                        own_date = True
                    elif lowered == "server":
                        own_server = True
                    elif lowered == "x-request-id":
                        own_request_id = True
                    if lowered in _DROPPED:
                        continue
                elif lowered != "set-cookie":  # cookies differ on every response
                    _remember(header, line, None)
                lines.append(line)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidResponse):
                raise
            raise InvalidResponse(
                f"response headers must be a list of (str, str) pairs: {exc}"
            ) from None
        if not own_date:
            lines.append(date_header())
        if not own_server:
            lines.append(SERVER_HEADER)
        head = b"".join(lines)
        if own_request_id:
            self._extra = b""
        self.status = status
        self.code = code = int(status[:3])
        self.has_body = code >= 200 and code != 204 and code != 304
        self.head = head
        self.content_length = length
        if close:
            self.close = True
        return self.write

    def write(self, data: bytes) -> None:
        """Send a piece of the body (the head goes with the first piece)."""
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"WSGI body chunks must be bytes, not {type(data).__name__}")
            data = bytes(data)
        if not self.head_sent:
            if not data:
                return  # an empty chunk must not start the body (or end a chunked one)
            self._send_head(data, None)
            return
        self._send_part(data)

    # -- what the server calls

    def finish(self, whole: bytes | None = None) -> None:
        """End the response; *whole* is the entire body when it is known at once."""
        if not self.head_sent:
            self._send_head(whole or b"", len(whole) if whole is not None else 0)
            return
        if whole:
            self._send_part(whole)
        if self.chunked:
            self._send(b"0\r\n\r\n")
        elif (
            self.content_length is not None
            and self.body_bytes < self.content_length
            and not self._head_request
            and self.has_body
        ):
            server_logger.warning(
                "response body shorter (%d bytes) than its Content-Length (%d); "
                "closing the connection",
                self.body_bytes,
                self.content_length,
            )
            self.short = True
            self.close = True

    def _send_head(self, data: bytes, total: int | None) -> None:
        """Send the head and the first *data*; *total* is the whole body's length if known."""
        if self.status is None:
            raise AssertionError("the application sent body bytes before start_response()")
        if self._before_head is not None:
            self._before_head()
        self.head_sent = True
        head = self.head
        has_body = self.has_body
        framing = b""
        if self.content_length is None and has_body:
            if total is not None and (total or not self._head_request):
                framing = b"Content-Length: %d\r\n" % total
                self.content_length = total
            elif self._head_request:
                pass  # no length known and no body to frame
            elif self._version == "1.1":
                framing = b"Transfer-Encoding: chunked\r\n"
                self.chunked = True
            else:
                self.close = True  # HTTP/1.0: the end of the body is the end of the connection
        if self._server.draining:
            self.close = True
        if self.close:
            framing += b"Connection: close\r\n"
        elif self._version == "1.0":
            framing += b"Connection: keep-alive\r\n"
        head = head + framing + self._extra + b"\r\n"
        if self._head_request or not has_body:
            self._send(head)
            return
        if self.chunked:
            self._send(head + b"%x\r\n" % len(data) + data + b"\r\n")
            self.body_bytes += len(data)
            return
        if self.content_length is not None and len(data) > self.content_length:
            data = self._fit(data)
        else:  # nothing to cut: count it here, without a call
            self.body_bytes += len(data)
        self._send(head + data)

    def _send_part(self, data: bytes) -> None:
        if not data or self._head_request or not self.has_body:
            return
        if self.chunked:
            self._send(b"%x\r\n" % len(data) + data + b"\r\n")
            self.body_bytes += len(data)
        else:
            data = self._fit(data)
            if data:
                self._send(data)

    def _fit(self, data: bytes) -> bytes:
        """Cut *data* at the Content-Length, counting what is sent."""
        length = self.content_length
        if length is not None and self.body_bytes + len(data) > length:
            if not self.close:
                server_logger.warning(
                    "response body longer than its Content-Length (%d); cut there and "
                    "closing the connection",
                    length,
                )
                self.close = True
            data = data[: max(0, length - self.body_bytes)]
        self.body_bytes += len(data)
        return data


def _status_line(status: object) -> bytes:
    """``HTTP/1.1 <status>\r\n`` for a valid PEP 3333 status (remembered), else raise."""
    if type(status) is not str or not _STATUS(status):
        raise InvalidResponse(f"invalid status line {status!r}; use '200 OK' form")
    try:
        line = ("HTTP/1.1 " + status + "\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidResponse(f"invalid status line {status!r}: not latin-1") from None
    if len(_STATUS_LINES) < _STATUS_LINES_MAX:
        _STATUS_LINES[status] = line
    return line


def _encode_line(name: object, value: object) -> tuple[str, bytes]:
    """Check one header and give its lower-cased name and its encoded line, else raise."""
    if type(name) is not str or not _TOKEN(name):
        raise InvalidResponse(f"invalid response header name {name!r}")
    if type(value) is not str:
        raise InvalidResponse(
            f"response header {name!r} has a {type(value).__name__} value; "
            "header values must be str"
        )
    if _BAD_VALUE(value):
        # Never sent, never split into two headers: that would be header injection.
        raise InvalidResponse(f"response header {name!r} has CR, LF or NUL in its value {value!r}")
    try:
        line = (name + ": " + value + "\r\n").encode("latin-1")
    except UnicodeEncodeError as exc:
        raise InvalidResponse(f"response header is not latin-1: {exc.object!r}") from None
    return name.lower(), line


def _remember(header: tuple[str, str], line: bytes, length: int | None) -> None:
    if len(_LINES) < _LINES_MAX and len(line) <= _LINE_MAX and type(header) is tuple:
        _LINES[header] = (line, length)
