"""Parse HTTP/1.1 requests strictly (RFC 9112) with llhttp, the parser Node.js uses.

httptools wraps llhttp, which already refuses most smuggling vectors itself: a Content-Length
that is not plain digits (``+10``, ``1_0``, ``1 0``), two Content-Lengths (even equal ones),
Content-Length together with Transfer-Encoding, ``chunked`` twice, a request whose last coding
is not ``chunked``, malformed chunk sizes and chunk endings, obs-fold (a header line starting
with whitespace), invalid characters in header names and values, bare LF or CR as a line end,
unknown methods and invalid characters in the request target.

What llhttp accepts and this module refuses (each with its status, and the app never called):

- a transfer coding other than ``chunked`` (``gzip, chunked``): 501, since we cannot decode it;
- Transfer-Encoding on an HTTP/1.0 request (RFC 9112 §6.1): 400;
- HTTP/1.1 without exactly one Host (RFC 9112 §3.2): 400;
- versions other than 1.0 and 1.1 (0.9, 2.0 over HTTP/1 framing): 505;
- CONNECT: 501 (an origin server does not tunnel);
- the limits in :mod:`.limits`: 414, 431, 413.

Header names with an underscore are dropped, as nginx and gunicorn do: the WSGI environ turns
``-`` into ``_``, so ``X_User`` would pass for ``X-User`` — a header a proxy in front may have
set or stripped under its real name. Trailer fields after a chunked body are ignored.

Parsing is push-based: :meth:`RequestParser.feed` takes whatever ``recv()`` returned and queues
each request whose head is complete on :attr:`RequestParser.ready`, so pipelined requests are
parsed from one buffer. A request's body keeps arriving on its :class:`Message` after the
message is handed out; the body reader asks the connection for more when it needs it.
"""

from __future__ import annotations

import time
from collections import deque

import httptools

from .errors import RequestError, bad_request
from .limits import Limits

# Header names the parser acts on, lower-cased.
_CONTENT_LENGTH = b"content-length"
_TRANSFER_ENCODING = b"transfer-encoding"
_HOST = b"host"
_EXPECT = b"expect"
_REQUEST_ID = b"x-request-id"
_SPECIAL = frozenset((_CONTENT_LENGTH, _TRANSFER_ENCODING, _HOST, _EXPECT, _REQUEST_ID))
_OWS = b" \t"
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}

# llhttp keeps the bytes of an unfinished header to itself, so the limits on complete headers
# cannot see one header line that never ends. Allow this much beyond the head limits in bytes
# fed while a head is incomplete, then refuse: memory stays bounded, and the exact limits
# still decide every head that does end.
_UNFINISHED_SLACK = 65536


class Message:
    """One request: its head, then its body as it arrives.

    ``error`` set while ``head_complete`` is false means the request was refused before the
    app could see it; set later, it is a fault in the body (a malformed chunk, a body over the
    limit), which the body reader raises.
    """

    # Class-level defaults: a request sets only the few it uses (most set none of them), which
    # keeps creating a message cheap; every one of them is per request once assigned.
    method = ""
    target = b""
    version = "1.1"
    keep_alive = False
    expect_continue = False
    content_length: int | None = None
    chunked = False
    transfer_encoding = False
    host_count = 0
    request_id: bytes | None = None
    upgrade = False
    body_received = 0
    head_complete = False
    complete = False
    error: RequestError | None = None

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()


class RequestParser:
    """Turn the bytes of one connection into :class:`Message` objects, in order.

    After an error nothing more is parsed: the failing message is queued with its ``error``
    (or, when the fault is in a body already handed out, set on that message) and the
    connection answers it and closes.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.ready: deque[Message] = deque()
        #: The request being parsed, from its first byte to the end of its body.
        self.current: Message | None = None
        #: True between a request's first byte and the end of its head.
        self.in_head = False
        #: ``time.monotonic()`` when the head being parsed began.
        self.head_started = 0.0
        #: No more requests can come on this connection (an error or an upgrade).
        self.stopped = False
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._header_count = 0
        self._header_bytes = 0
        self._unfinished_bytes = 0
        self._unfinished_limit = (
            limits.max_request_line + limits.max_header_size + _UNFINISHED_SLACK
        )

    def feed(self, data: bytes) -> None:
        """Parse *data*; complete heads are appended to :attr:`ready`."""
        if self.stopped:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # An Upgrade or CONNECT request: llhttp stops after its head. We answer it as a
            # plain request (or refuse CONNECT) and close, ignoring whatever follows.
            self.stopped = True
            if self.ready:
                self.ready[-1].upgrade = True
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, RequestError) else bad_request(str(exc)))
            return
        except httptools.HttpParserError as exc:
            self._fail(bad_request(str(exc) or type(exc).__name__))
            return
        if self.in_head:
            # Counted per feed, so a pipelined batch may charge the next head a little early;
            # the slack is far larger than that.
            self._unfinished_bytes += len(data)
            if self._unfinished_bytes > self._unfinished_limit:
                self._fail(_head_too_large(self._url, self.limits))

    def _fail(self, error: RequestError) -> None:
        self.stopped = True
        message = self.current
        if message is None or message.head_complete:
            if message is not None and not message.complete:
                message.error = error  # a fault in a body the app may be reading
                return
            message = Message()
        message.error = error
        self.ready.append(message)

    # httptools callbacks, in the order llhttp calls them.

    def on_message_begin(self) -> None:
        self.current = Message()
        self.in_head = True
        self.head_started = time.monotonic()
        self._url = b""
        self._header_count = 0
        self._header_bytes = 0
        self._unfinished_bytes = 0

    def on_url(self, part: bytes) -> None:
        self._url += part
        if len(self._url) > self.limits.max_request_line:
            raise RequestError(
                414, f"request target longer than {self.limits.max_request_line} bytes"
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        message = self.current
        assert message is not None
        self._header_count += 1
        self._header_bytes += len(name) + len(value)
        limits = self.limits
        if self._header_count > limits.max_header_count:
            raise RequestError(431, f"more than {limits.max_header_count} header fields")
        if self._header_bytes > limits.max_header_size:
            raise RequestError(431, f"header fields larger than {limits.max_header_size} bytes")
        if message.head_complete or b"_" in name:
            return  # a trailer field, or a name that would alias another in the environ
        value = value.rstrip(_OWS)  # llhttp strips the leading whitespace only
        message.headers.append((name, value))
        lowered = name.lower()
        if lowered in _SPECIAL:
            _special_header(message, lowered, value)

    def on_headers_complete(self) -> None:
        message = self.current
        assert message is not None
        parser = self._parser
        method = parser.get_method()
        message.method = _METHODS.get(method) or method.decode("ascii")
        message.target = self._url
        message.version = version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise RequestError(505, f"HTTP/{version} is not supported; use HTTP/1.1")
        if message.method == "CONNECT":
            raise RequestError(501, "CONNECT is not supported")
        if version == "1.1":
            if message.host_count != 1:
                raise bad_request("HTTP/1.1 requires exactly one Host header")
        elif message.transfer_encoding:
            raise bad_request("Transfer-Encoding is not allowed in HTTP/1.0")
        else:
            message.expect_continue = False
        length = message.content_length
        limit = self.limits.max_body_size
        if limit is not None and length is not None and length > limit:
            raise RequestError(413, f"request body larger than {limit} bytes")
        message.keep_alive = parser.should_keep_alive()
        message.head_complete = True
        self.in_head = False
        self.ready.append(message)

    def on_body(self, data: bytes) -> None:
        message = self.current
        assert message is not None
        message.body += data
        message.body_received += len(data)
        limit = self.limits.max_body_size
        if limit is not None and message.body_received > limit:
            raise RequestError(413, f"request body larger than {limit} bytes")

    def on_message_complete(self) -> None:
        message = self.current
        assert message is not None
        message.complete = True
        self.current = None


def _special_header(message: Message, lowered: bytes, value: bytes) -> None:
    if lowered == _CONTENT_LENGTH:
        # llhttp has refused everything but digits, and duplicates; int() is safe.
        message.content_length = int(value)
    elif lowered == _TRANSFER_ENCODING:
        message.transfer_encoding = True
        for coding in value.split(b","):
            coding = coding.strip(_OWS).lower()
            if coding != b"chunked":
                name = coding.decode("latin-1") or "(empty)"
                raise RequestError(501, f"transfer coding {name!r} is not supported")
        message.chunked = True  # llhttp refuses chunked twice
    elif lowered == _HOST:
        message.host_count += 1
    elif lowered == _EXPECT:
        message.expect_continue = value.lower() == b"100-continue"
    else:
        message.request_id = value


def _head_too_large(url: bytes, limits: Limits) -> RequestError:
    if len(url) >= limits.max_request_line:
        return RequestError(414, f"request target longer than {limits.max_request_line} bytes")
    return RequestError(431, f"header fields larger than {limits.max_header_size} bytes")
