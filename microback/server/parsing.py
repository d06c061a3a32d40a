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
- a repeated Content-Type, Authorization, Proxy-Authorization or Host: 400 (single values,
  RFC 9110 §5.3; joined with a comma they would mean something else);
- a major version other than 1 (0.9, 2.0 or 9.9 over HTTP/1 framing, the HTTP/2 preface): 505.
  A higher 1.x minor version is served as HTTP/1.1 (RFC 9110 §2.5);
- CONNECT: 501 (an origin server does not tunnel);
- a target that is not one an origin server serves (:mod:`.request_target`): 400;
- the limits in :mod:`.limits`: 414, 431, 413.

And what llhttp refuses that HTTP allows:

- a method it does not know but that is a valid token (``FOO``, ``-BLARGH``): 501, "not
  implemented" (RFC 9110 §9.1), not 400; the log names the methods it parses (:data:`METHODS`).
  A method longer than 64 bytes is a 400: only that much of it is kept to be looked at;
- chunk extensions with whitespace around ``;`` and ``=`` (``5 ; a = b``), which RFC 9112 §7.1.1
  allows: each chunk-size line is checked here against the RFC's grammar and handed to llhttp
  as the bare size. Extensions are ignored; llhttp still checks everything else in the body.

Header names with an underscore are dropped, as nginx and gunicorn do: the WSGI environ turns
``-`` into ``_``, so ``X_User`` would pass for ``X-User`` — a header a proxy in front may have
set or stripped under its real name. Trailer fields after a chunked body are ignored, except
those that must not be trailers (RFC 9110 §6.5.1: framing, routing, authentication, request
modifiers and content fields), which are refused with 400.

The client never sees llhttp's own wording ("Pause on PRI/Upgrade"): it gets a short reason of
ours, and llhttp's text goes to the log at debug level (:attr:`~.errors.RequestError.detail`).

Parsing is push-based: :meth:`RequestParser.feed` takes whatever ``recv()`` returned and queues
each request whose head is complete on :attr:`RequestParser.ready`, so pipelined requests are
parsed from one buffer. A request's body keeps arriving on its :class:`Message` after the
message is handed out; the body reader asks the connection for more when it needs it.

llhttp is never given bytes past the end of a head it has not finished (the first CRLF CRLF,
since it refuses bare LF), of a Content-Length body, or of a chunked message. So each message
starts a fresh piece of input: the bytes of a method llhttp refused are known, and a chunked
body passes through the chunk-size check above before llhttp sees it.
"""

from __future__ import annotations

import re
import time
from collections import deque

import httptools

from .errors import RequestError, bad_request
from .limits import Limits
from .request_target import origin_form

# Header names the parser acts on, lower-cased.
_CONTENT_LENGTH = b"content-length"
_TRANSFER_ENCODING = b"transfer-encoding"
_HOST = b"host"
_EXPECT = b"expect"
_REQUEST_ID = b"x-request-id"
# Fields with a single value (RFC 9110 §5.3): a second one is refused, with the name to show.
_SINGLE = {
    b"content-type": "Content-Type",
    b"authorization": "Authorization",
    b"proxy-authorization": "Proxy-Authorization",
}
_SPECIAL = frozenset((_CONTENT_LENGTH, _TRANSFER_ENCODING, _HOST, _EXPECT, _REQUEST_ID, *_SINGLE))
_OWS = b" \t"
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}

#: The methods llhttp parses and the server passes to the application (CONNECT and PRI are
#: refused; any other token method gets 501). docs/serving.md lists them.
METHODS = (
    *("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "QUERY", "PURGE"),
    *("COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND"),
    *("REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "MKCALENDAR"),
    *("M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "LINK", "UNLINK", "SOURCE"),
)
_KNOWN_METHODS = frozenset(m.encode() for m in (*METHODS, "CONNECT", "PRI"))
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_METHOD_SHOWN = 64  # bytes of a refused method kept to tell a token from garbage

# Fields that must not be trailers (RFC 9110 §6.5.1): they are needed before the content.
# Every X-Forwarded-* field too (_FORWARDED_PREFIX): proxies route by them (Port, Prefix).
_NOT_TRAILERS = frozenset(
    (
        # framing and connection management
        *(b"content-length", b"transfer-encoding", b"trailer", b"te", b"connection"),
        *(b"keep-alive", b"upgrade", b"proxy-connection"),
        # routing
        *(b"host", b"forwarded", b"max-forwards", b"via"),
        # authentication and state
        *(b"authorization", b"proxy-authorization", b"cookie"),
        # request modifiers: controls, conditionals, negotiation
        *(b"cache-control", b"expect", b"pragma", b"range", b"if-match", b"if-none-match"),
        *(b"if-modified-since", b"if-unmodified-since", b"if-range", b"accept"),
        *(b"accept-charset", b"accept-encoding", b"accept-language"),
        # content
        *(b"content-type", b"content-encoding", b"content-language", b"content-location"),
        b"content-range",
    )
)

# A chunk-size line (RFC 9112 §7.1, §7.1.1): hex digits, then extensions with optional
# whitespace around ";" and "=", each a token name with a token or quoted-string value.
_CHUNK_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x20-\x7e\x80-\xff])*"'
_CHUNK_LINE_PATTERN = re.compile(
    rb"0*([0-9A-Fa-f]{1,16})(?:[ \t]*;[ \t]*%s(?:[ \t]*=[ \t]*(?:%s|%s))?)*\r\n"
    % (_CHUNK_TOKEN, _CHUNK_TOKEN, _QUOTED)
)
_CHUNK_LINE = _CHUNK_LINE_PATTERN.fullmatch
_CHUNK_LINE_AT = _CHUNK_LINE_PATTERN.match
#: A chunk-size line longer than this (extensions included) is refused.
MAX_CHUNK_LINE = 4096
#: Chunk extensions are checked in Python, so their total in one body is bounded (as Node.js
#: bounds them since CVE-2024-22019): a body cannot be made of costly lines.
MAX_CHUNK_EXTENSIONS = 16384
_FORWARDED_PREFIX = b"x-forwarded-"
_TRAILERS = -1  # RequestParser._chunk_left while the trailer section is parsed

# What the client is told for llhttp's errors, by a word in llhttp's text (its wording is
# internal and changes between versions; anything unmatched gets the last reason).
_PARSER_REASONS = (
    ("content-length", "invalid Content-Length"),
    ("transfer-encoding", "invalid Transfer-Encoding"),
    ("version", "malformed HTTP version"),
    ("dot", "malformed HTTP version"),
    ("url", "invalid character in the request target"),
    ("header", "malformed header field"),
    ("", "malformed request line or head"),
)

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
    #: The path and query of an absolute-form target (``http://host/path?q``), else None.
    origin: bytes | None = None
    version = "1.1"
    keep_alive = False
    expect_continue = False
    content_length: int | None = None
    chunked = False
    transfer_encoding = False
    host_count = 0
    single: frozenset[bytes] = frozenset()  # single-value fields seen (_SINGLE)
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
        # The version is checked here (505 for a major version other than 1; 1.x as 1.1).
        self._parser.set_dangerous_leniencies(lenient_version=True)
        self._url = b""
        self._header_count = 0
        self._header_bytes = 0
        self._unfinished_bytes = 0
        self._unfinished_limit = (
            limits.max_request_line + limits.max_header_size + _UNFINISHED_SLACK
        )
        # The last bytes given to llhttp of a head or trailer section, to find its end (CRLF
        # CRLF) when it is split between two reads.
        self._carry = b""
        # The read in which the current message began, and where: to name a method llhttp
        # refused (kept by reference; copied only then).
        self._start = b""
        self._start_at = 0
        # In a chunked body: data and CRLF bytes left in the current chunk, 0 in a chunk-size
        # line (held in _chunk_line until it ends), _TRAILERS in the trailer section.
        self._chunk_left = 0
        self._chunk_line = bytearray()
        self._extension_bytes = 0

    def feed(self, data: bytes) -> None:
        """Parse *data*; complete heads are appended to :attr:`ready`."""
        if self.stopped:
            return
        end = len(data)
        if self.current is None and end > 3 and data.find(b"\r\n\r\n") == end - 4:
            # The common case, one whole head and nothing else: no need to cut it up.
            self._start, self._start_at = data, 0
            self._execute(data)
            return
        pos = 0
        view: memoryview | None = None
        while pos < end:
            message = self.current
            if message is None or not message.head_complete:
                if message is None:  # a new message starts here
                    self._start, self._start_at = data, pos
                elif not self._url:  # its method may go on in this read
                    begun = self._start[self._start_at : self._start_at + _METHOD_SHOWN]
                    self._start, self._start_at = begun + data[pos : pos + _METHOD_SHOWN], 0
                if self._carry:
                    stop = self._section_end(data, pos)
                else:  # inline, for the common case: a whole head in one read
                    stop = data.find(b"\r\n\r\n", pos) + 4
                    if stop < 4:
                        stop = self._section_end(data, pos)
            elif not message.chunked:
                # A Content-Length body (a message without one is complete with its head).
                left = (message.content_length or 0) - message.body_received
                stop = min(end, pos + left) if left > 0 else end
            elif self._chunk_left >= 0:
                pos = self._chunks(data, pos, end)
                continue
            else:
                stop = self._section_end(data, pos)
            if pos == 0 and stop == end:
                self._execute(data)
            else:
                if view is None:
                    view = memoryview(data)
                self._execute(view[pos:stop])
            if self.stopped:
                break
            pos = stop
        if self.in_head:
            # Counted per feed, so a pipelined batch may charge the next head a little early;
            # the slack is far larger than that.
            self._unfinished_bytes += len(data)
            if self._unfinished_bytes > self._unfinished_limit:
                self._fail(_head_too_large(self._url, self.limits))

    def _section_end(self, data: bytes, pos: int) -> int:
        """Where the head or trailer section being parsed ends in *data*, else ``len(data)``.

        Ending a piece there early is harmless (llhttp goes on with the next piece); ending
        it late is not, so every CRLF CRLF is a candidate, and llhttp decides.
        """
        carry = self._carry
        if carry:
            found = (carry + data[pos : pos + 3]).find(b"\r\n\r\n")
            if found >= 0:
                stop = pos + found + 4 - len(carry)
                self._carry = b""
                return stop
        found = data.find(b"\r\n\r\n", pos)
        if found >= 0:
            self._carry = b""
            return found + 4
        self._carry = (carry + data[max(pos, len(data) - 3) :])[-3:]
        return len(data)

    def _chunks(self, data: bytes, pos: int, end: int) -> int:
        """Give llhttp the chunks in *data* from *pos*, each chunk-size line cut to its size.

        Returns where it stopped: the end of *data*, or the start of the trailer section.
        What it passes on goes to llhttp in one call, so a body of many small chunks costs
        one llhttp call per read rather than two per chunk.
        """
        pieces: list[bytes | memoryview] = []
        left = self._chunk_left
        view = memoryview(data)
        while pos < end and left >= 0:
            if left:  # chunk data and the CRLF after it: llhttp checks both
                stop = min(end, pos + left)
                pieces.append(view[pos:stop])
                left -= stop - pos
                pos = stop
                continue
            match = None
            if not self._chunk_line:
                match = _CHUNK_LINE_AT(data, pos, min(end, pos + MAX_CHUNK_LINE))
            if match is not None:
                pos = match.end()
            else:  # a line that goes on in the next read, or a bad one
                pos, match = self._chunk_line_in_pieces(data, pos, end)
                if match is None:
                    break
            size = int(match.group(1), 16)
            self._extension_bytes += match.end() - match.end(1) - 2
            if self._extension_bytes > MAX_CHUNK_EXTENSIONS:
                self._fail(bad_request(f"chunk extensions over {MAX_CHUNK_EXTENSIONS} bytes"))
                break
            pieces.append(b"%x\r\n" % size)
            left = size + 2 if size else _TRAILERS
        self._chunk_left = left
        if left == _TRAILERS:
            self._carry = b"\r\n"  # the trailer section ends at an empty line, even the first
        if pieces and not self.stopped:
            self._execute(b"".join(pieces))
        return end if self.stopped else pos

    def _chunk_line_in_pieces(
        self, data: bytes, pos: int, end: int
    ) -> tuple[int, re.Match[bytes] | None]:
        """Add to the chunk-size line held from earlier reads; check it once it ends."""
        line = self._chunk_line
        newline = data.find(b"\n", pos, end)
        stop = end if newline < 0 else newline + 1
        line += data[pos:stop]
        if len(line) > MAX_CHUNK_LINE:
            self._fail(bad_request(f"chunk-size line longer than {MAX_CHUNK_LINE} bytes"))
            return end, None
        if newline < 0:
            return end, None  # the rest comes in the next read
        match = _CHUNK_LINE(bytes(line))
        line.clear()
        if match is None:
            self._fail(bad_request("malformed chunk size or chunk extension"))
        return stop, match

    def _execute(self, data: bytes | memoryview) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # An Upgrade or CONNECT request: llhttp stops after its head. We answer it as a
            # plain request (or refuse CONNECT) and close, ignoring whatever follows.
            self.stopped = True
            if self.ready:
                self.ready[-1].upgrade = True
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, RequestError):
                self._fail(cause)
            else:
                self._fail(self._parser_error(exc))
        except httptools.HttpParserError as exc:
            self._fail(self._parser_error(exc))

    def _parser_error(self, exc: Exception) -> RequestError:
        """Our answer to an error llhttp reported; llhttp's own text becomes the detail."""
        detail = str(exc) or type(exc).__name__
        message = self.current
        if message is not None and message.head_complete:
            if message.chunked and self._chunk_left == _TRAILERS:
                return _trailer_error(detail)
            return RequestError(400, "malformed chunked body", detail)
        start = self._start[self._start_at : self._start_at + _METHOD_SHOWN]
        method, space, _ = start.lstrip(b"\r\n").partition(b" ")
        if method == b"PRI":
            return RequestError(505, "HTTP/2 is not supported here; use HTTP/1.1", detail)
        if isinstance(exc, httptools.HttpParserInvalidMethodError) or (
            method and method not in _KNOWN_METHODS
        ):
            if _TOKEN(method):
                if not space and len(start) == _METHOD_SHOWN:
                    # It goes on past the bytes kept: whether it is a token is unknown.
                    return RequestError(
                        400, f"invalid method: longer than {_METHOD_SHOWN} bytes", detail
                    )
                return RequestError(
                    501,
                    f"method {method.decode('ascii')} is not implemented by this server; "
                    f"it serves {', '.join(METHODS)}",
                    detail,
                )
            return RequestError(400, "invalid method: it must be a token such as GET", detail)
        lowered = detail.lower()
        reason = next(reason for word, reason in _PARSER_REASONS if word in lowered)
        return RequestError(400, reason, detail)

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
        if message.head_complete:
            lowered = name.lower()
            if lowered in _NOT_TRAILERS or lowered.startswith(_FORWARDED_PREFIX):
                raise bad_request(f"{name.decode('latin-1')} is not allowed in a trailer section")
            return  # trailer fields are not passed on
        if b"_" in name:
            return  # a name that would alias another in the environ
        value = value.rstrip(_OWS)  # llhttp strips the leading whitespace only
        message.headers.append((name, value))
        lowered = name.lower()
        if lowered == _HOST:  # on every request: counted here, without a call
            message.host_count += 1
            if message.host_count > 1:
                raise bad_request("more than one Host header")
        elif lowered in _SPECIAL:
            _special_header(message, lowered, value)

    def on_headers_complete(self) -> None:
        message = self.current
        assert message is not None
        parser = self._parser
        method = parser.get_method()
        message.method = _METHODS.get(method) or method.decode("ascii")
        message.target = self._url
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            if version[:2] != "1.":
                message.version = version  # the access line names what was asked for
                raise RequestError(505, f"HTTP/{version} is not supported; use HTTP/1.1")
            version = "1.1"  # a later 1.x is served as 1.1, the highest we implement
        message.version = version
        if message.method == "CONNECT":
            raise RequestError(501, "CONNECT is not supported")
        target = message.target
        if target[:1] != b"/" or b"%" in target:
            message.origin = origin_form(message.method, target)
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
        self._chunk_left = self._extension_bytes = 0
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
    elif lowered == _EXPECT:
        message.expect_continue = value.lower() == b"100-continue"
    elif lowered == _REQUEST_ID:
        message.request_id = value
    else:
        if lowered in message.single:
            raise bad_request(f"more than one {_SINGLE[lowered]} header; send one")
        message.single |= {lowered}


def _trailer_error(detail: str) -> RequestError:
    """Our answer to llhttp refusing a trailer field: named, as our own refusals name them.

    llhttp refuses Content-Length and Transfer-Encoding there itself, before
    :meth:`RequestParser.on_header` could refuse them as fields that must not be trailers.
    """
    lowered = detail.lower()
    for name in ("Content-Length", "Transfer-Encoding"):
        if name.lower() in lowered:
            return RequestError(400, f"{name} is not allowed in a trailer section", detail)
    return RequestError(400, "malformed trailer field", detail)


def _head_too_large(url: bytes, limits: Limits) -> RequestError:
    if len(url) >= limits.max_request_line:
        return RequestError(414, f"request target longer than {limits.max_request_line} bytes")
    return RequestError(431, f"header fields larger than {limits.max_header_size} bytes")
