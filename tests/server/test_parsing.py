"""Strict HTTP/1.1 framing (RFC 9112): each malformed request is refused and never reaches the app.

Every case goes over a raw socket to the shared server: the answer must be the expected status,
the connection must then be closed, and the app must never have seen the request's path.
Cases marked "llhttp" are refused by the parser itself; the others by microback's own checks
(microback/server/parsing.py).
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import time
from pathlib import Path

import pytest
from serving import (
    RAW_APP,
    REPO,
    Reader,
    ServerProcess,
    StartServer,
    exchange,
    read_all,
    write_module,
)

from microback.server.parsing import METHODS

HOST = "Host: test\r\n"

# (id, status, raw request); the target of each is /framing/<id>.
CASES = [
    # Content-Length: llhttp
    ("cl-plus", 400, "POST {t} HTTP/1.1\r\n{h}Content-Length: +3\r\n\r\nabc"),
    ("cl-underscore", 400, "POST {t} HTTP/1.1\r\n{h}Content-Length: 1_0\r\n\r\nabc"),
    ("cl-inner-space", 400, "POST {t} HTTP/1.1\r\n{h}Content-Length: 1 0\r\n\r\nabc"),
    ("cl-vertical-tab", 400, "POST {t} HTTP/1.1\r\n{h}Content-Length: \x0b3\r\n\r\nabc"),
    ("cl-list", 400, "POST {t} HTTP/1.1\r\n{h}Content-Length: 3, 3\r\n\r\nabc"),
    ("cl-negative", 400, "POST {t} HTTP/1.1\r\n{h}Content-Length: -1\r\n\r\nabc"),
    (
        "cl-duplicate",
        400,
        "POST {t} HTTP/1.1\r\n{h}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    ),
    (
        "cl-duplicate-same",
        400,
        "POST {t} HTTP/1.1\r\n{h}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    ),
    (
        "cl-with-te",
        400,
        "POST {t} HTTP/1.1\r\n{h}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\nGET /framing/smuggled HTTP/1.1\r\n{h}\r\n",
    ),
    # Transfer-Encoding: llhttp (chunked twice, chunked not last) and ours (unknown codings)
    (
        "te-chunked-twice",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "te-two-headers",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
        "\r\n0\r\n\r\n",
    ),
    (
        "te-gzip-chunked",
        501,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ),
    ("te-gzip", 501, "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: gzip\r\n\r\n"),
    ("te-unknown", 501, "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    ("te-http10", 400, "POST {t} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    # Chunk sizes and endings: llhttp
    (
        "chunk-size-letters",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    ),
    (
        "chunk-size-0x",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    ),
    (
        "chunk-size-space",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
    ),
    (
        "chunk-size-overflow",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n",
    ),
    (
        "chunk-no-crlf",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
    ),
    (
        "chunk-bare-lf",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
    ),
    # Header syntax: llhttp
    ("obs-fold", 400, "GET {t} HTTP/1.1\r\n{h}X-A: a\r\n b\r\n\r\n"),
    ("space-in-name", 400, "GET {t} HTTP/1.1\r\n{h}X A: a\r\n\r\n"),
    ("space-before-colon", 400, "GET {t} HTTP/1.1\r\n{h}X-A : a\r\n\r\n"),
    ("at-in-name", 400, "GET {t} HTTP/1.1\r\n{h}X@A: a\r\n\r\n"),
    ("ctl-in-name", 400, "GET {t} HTTP/1.1\r\n{h}X\x01A: a\r\n\r\n"),
    ("no-colon", 400, "GET {t} HTTP/1.1\r\n{h}XA\r\n\r\n"),
    ("empty-name", 400, "GET {t} HTTP/1.1\r\n{h}: a\r\n\r\n"),
    ("nul-in-value", 400, "GET {t} HTTP/1.1\r\n{h}X-A: a\x00b\r\n\r\n"),
    ("ctl-in-value", 400, "GET {t} HTTP/1.1\r\n{h}X-A: a\x01b\r\n\r\n"),
    # Line endings: llhttp
    ("bare-lf-request-line", 400, "GET {t} HTTP/1.1\n{h}\r\n"),
    ("bare-lf-header", 400, "GET {t} HTTP/1.1\r\nHost: test\nX-A: b\r\n\r\n"),
    ("bare-lf-end", 400, "GET {t} HTTP/1.1\r\n{h}\n"),
    ("bare-cr", 400, "GET {t} HTTP/1.1\r\nHost: test\rX-A: b\r\n\r\n"),
    # Request line: llhttp (target, version syntax) and ours (methods, versions, CONNECT).
    # Methods are case-sensitive tokens (RFC 9110 §9.1): one llhttp cannot parse is 501.
    ("lower-case-method", 501, "get {t} HTTP/1.1\r\n{h}\r\n"),
    ("unknown-method", 501, "FOO {t} HTTP/1.1\r\n{h}\r\n"),
    ("unknown-method-dash", 501, "-BLARGH {t} HTTP/1.1\r\n{h}\r\n"),
    ("unknown-method-prefix", 501, "GETX {t} HTTP/1.1\r\n{h}\r\n"),
    ("rtsp-method", 501, "DESCRIBE {t} HTTP/1.1\r\n{h}\r\n"),
    ("non-token-method", 400, "G@T {t} HTTP/1.1\r\n{h}\r\n"),
    ("non-token-method-slash", 400, "GE/T {t} HTTP/1.1\r\n{h}\r\n"),
    ("non-token-method-8bit", 400, "G\xc9T {t} HTTP/1.1\r\n{h}\r\n"),
    # Only the first 64 bytes of a refused method are kept: past them, a token is not known.
    ("long-non-token-method", 400, "A" * 70 + "@ {t} HTTP/1.1\r\n{h}\r\n"),
    ("long-method", 400, "A" * 70 + " {t} HTTP/1.1\r\n{h}\r\n"),
    ("space-in-target", 400, "GET {t} x HTTP/1.1\r\n{h}\r\n"),
    ("ctl-in-target", 400, "GET {t}\x01 HTTP/1.1\r\n{h}\r\n"),
    ("http-2.0", 505, "GET {t} HTTP/2.0\r\n{h}\r\n"),
    ("http-3.0", 505, "GET {t} HTTP/3.0\r\n{h}\r\n"),
    ("http-9.9", 505, "GET {t} HTTP/9.9\r\n{h}\r\n"),
    ("http-0.9", 505, "GET {t}\r\n\r\n"),
    ("http2-preface", 505, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("connect", 501, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
    # Targets: ours (microback/server/request_target.py)
    ("asterisk-get", 400, "GET * HTTP/1.1\r\n{h}\r\n"),
    ("asterisk-post", 400, "POST * HTTP/1.1\r\n{h}Content-Length: 0\r\n\r\n"),
    ("absolute-open-bracket", 400, "GET http://[::1/framing/x HTTP/1.1\r\n{h}\r\n"),
    ("absolute-close-bracket", 400, "PUT s://]ufd/: HTTP/1.1\r\n{h}Content-Length: 0\r\n\r\n"),
    ("bad-percent", 400, "GET {t}/%zz HTTP/1.1\r\n{h}\r\n"),
    # Host and other single-value fields: ours
    ("no-host", 400, "GET {t} HTTP/1.1\r\n\r\n"),
    ("two-hosts", 400, "GET {t} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("two-hosts-http10", 400, "GET {t} HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
    (
        "two-content-types",
        400,
        "POST {t} HTTP/1.1\r\n{h}Content-Type: application/json\r\nContent-Type: text/html\r\n"
        "Content-Length: 2\r\n\r\n{{}}",
    ),
    (
        "two-authorizations",
        400,
        "GET {t} HTTP/1.1\r\n{h}Authorization: a\r\nAuthorization: b\r\n\r\n",
    ),
    (
        "two-proxy-authorizations",
        400,
        "GET {t} HTTP/1.1\r\n{h}Proxy-Authorization: a\r\nProxy-Authorization: b\r\n\r\n",
    ),
    # Chunk extensions: ours. Whitespace around ";" and "=" is allowed, nothing else is.
    (
        "chunk-ext-bare-lf",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3;a\nabc\r\n0\r\n\r\n",
    ),
    (
        "chunk-ext-bare-cr",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3;a\rb\r\nabc\r\n0\r\n\r\n",
    ),
    (
        "chunk-ext-lf-in-quotes",
        400,
        'POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3;a="\n"\r\nabc\r\n0\r\n\r\n',
    ),
    (
        "chunk-ext-no-name",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3;\r\nabc\r\n0\r\n\r\n",
    ),
    (
        "chunk-ext-space-in-value",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3;a=b c\r\nabc\r\n0\r\n\r\n",
    ),
    (
        "chunk-ext-too-long",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3;a=" + "b" * 5000 + "\r\n",
    ),
    (
        "chunk-ext-total-too-large",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n"
        + ("1;a=" + "b" * 4000 + "\r\nx\r\n") * 5
        + "0\r\n\r\n",
    ),
    (
        "chunk-size-space-inside",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n1 2\r\n" + "a" * 18 + "\r\n",
    ),
    (
        "chunk-size-smuggled-request",
        400,
        "POST {t} HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n"
        "3;a\nGET /framing/smuggled HTTP/1.1\r\n{h}\r\n",
    ),
]


@pytest.mark.parametrize(
    ("case", "status", "raw"), [pytest.param(*case, id=case[0]) for case in CASES]
)
def test_malformed_request_is_refused_and_closed(
    http_server: ServerProcess, case: str, status: int, raw: str
) -> None:
    target = f"/framing/{case}"
    request = raw.format(t=target, h=HOST).encode("latin-1")

    answer = exchange(http_server, request)  # returns once the server has closed

    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer
    assert re.search(rb"(?im)^connection: close\r$", answer), answer
    assert _responses(answer) == 1, answer  # nothing smuggled in after the refused request
    assert target not in _seen(http_server)


# RFC 9110 §6.5.1: fields needed before the content (framing, routing, authentication,
# request modifiers, content) must not be trailers; each one is refused the same way.
NOT_TRAILERS = [
    *("Content-Length", "Transfer-Encoding", "Trailer", "TE", "Connection", "Keep-Alive"),
    *("Upgrade", "Proxy-Connection", "Host", "Forwarded", "X-Forwarded-For"),
    *("X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix"),
    *("Max-Forwards", "Via", "Authorization"),
    *("Proxy-Authorization", "Cookie", "Cache-Control", "Expect", "Pragma", "Range"),
    *("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"),
    *("Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Content-Type"),
    *("Content-Encoding", "Content-Language", "Content-Location", "Content-Range"),
]


@pytest.mark.parametrize("name", NOT_TRAILERS)
def test_field_that_must_not_be_a_trailer_is_refused(
    http_server: ServerProcess, name: str
) -> None:
    raw = (
        f"POST /echo HTTP/1.1\r\n{HOST}Transfer-Encoding: chunked\r\n\r\n"
        f"5\r\nhello\r\n0\r\n{name}: 1\r\n\r\n"
    ).encode()

    answer = exchange(http_server, raw)

    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert answer.endswith(f"{name} is not allowed in a trailer section\n".encode()), answer
    assert _responses(answer) == 1


def test_other_trailer_fields_are_accepted_and_not_passed_on(http_server: ServerProcess) -> None:
    raw = (
        b"POST /environ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close"
        b"\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: 1\r\nServer-Timing: a\r\n\r\n"
    )

    answer = exchange(http_server, raw)

    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"HTTP_X_CHECKSUM" not in answer


@pytest.mark.parametrize(
    "size_line",
    [
        b"5;a",
        b"5;a=b",
        b"5; a",
        b"5 ;a",
        b"5;a = b",
        b'5\t;\ta\t=\t"q \\"x"',
        b'5 ; a=1 ; b ; c=""',
    ],
)
def test_chunk_extensions_with_whitespace_are_accepted(
    http_server: ServerProcess, size_line: bytes
) -> None:
    # RFC 9112 §7.1.1: bad whitespace (BWS) around ";" and "=" must be parsed; extensions
    # are ignored. A pipelined request after the body shows the framing stayed in step.
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + size_line
        + b"\r\nhello\r\n0\r\n\r\nGET /echo?after=1 HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    with http_server.connect() as sock:
        sock.sendall(raw)
        reader = Reader(sock)
        first, second = reader.response(), reader.response()

    assert (first[0], json.loads(first[2])["body"]) == (200, "hello")
    assert (second[0], json.loads(second[2])["query"]) == (200, "after=1")


def test_chunked_request_split_into_single_bytes_is_read_whole(
    http_server: ServerProcess,
) -> None:
    # Every boundary of the head, the chunk-size lines, the data and the trailer section in a
    # read of its own.
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5 ; a = b\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n"
    )
    with http_server.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in raw:
            sock.sendall(bytes([byte]))
        status, _, answer = Reader(sock).response()

    assert (status, json.loads(answer)["body"]) == (200, "hello!")


def test_pipelined_messages_each_start_where_the_last_one_ended(
    http_server: ServerProcess,
) -> None:
    # A body holding CRLF CRLF, then a chunked body with extensions, then an unknown method:
    # the parser must find each message's start exactly to answer each one as its own.
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\na\r\n\r\nFOO b"
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'3 ;x = "a;b=\\"c"\r\nabc\r\n0 ; y\r\n\r\n'
        b"FOO /echo HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    with http_server.connect() as sock:
        sock.sendall(raw)
        reader = Reader(sock)
        first, second, third = reader.response(), reader.response(), reader.response()

    assert (first[0], json.loads(first[2])["body"]) == (200, "a\r\n\r\nFOO b")
    assert (second[0], json.loads(second[2])["body"]) == (200, "abc")
    assert third[0] == 501 and third[2].startswith(b"501 Not Implemented: method FOO ")


@pytest.mark.parametrize(
    ("method", "reason"),
    [
        (b"A" * 70, b"400 Bad Request: invalid method: longer than 64 bytes"),
        # The binary PROXY protocol v2 header, sent to a server that does not expect it.
        (
            b"\r\n\r\n\x00\r\nQUIT\n" + b"\x00" * 64,
            b"400 Bad Request: invalid method: it must be a token",
        ),
    ],
    ids=["long-token", "proxy-v2-header"],
)
def test_refused_method_is_told_what_is_wrong_with_it(
    http_server: ServerProcess, method: bytes, reason: bytes
) -> None:
    answer = exchange(http_server, method + b" /framing/long-method HTTP/1.1\r\nHost: t\r\n\r\n")

    assert answer.partition(b"\r\n\r\n")[2].startswith(reason), answer


def test_unknown_method_split_between_reads_is_named_whole(http_server: ServerProcess) -> None:
    # "QUER" is the start of QUERY, which the parser knows: it fails only at the "X".
    with http_server.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"QUER")
        time.sleep(0.2)
        sock.sendall(b"X /framing/split-method HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = read_all(sock)

    assert answer.startswith(b"HTTP/1.1 501 Not Implemented"), answer
    assert b"501 Not Implemented: method QUERX is not implemented" in answer


def test_http_1_2_is_served_as_http_1_1(http_server: ServerProcess) -> None:
    # RFC 9110 §2.5: a higher minor version is handled as the highest one implemented.
    with http_server.connect() as sock:
        sock.sendall(b"GET /environ/minor HTTP/1.2\r\nHost: t\r\n\r\n")
        status, headers, body = Reader(sock).response()

    assert status == 200
    assert json.loads(body)["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert headers.get("Connection") is None  # kept alive, as HTTP/1.1 is by default


def test_asterisk_form_is_served_for_options(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, body = Reader(sock).response()

    assert (status, json.loads(body)) == (200, {"path": "*"})


def test_absolute_form_is_served_as_its_path_and_query(http_server: ServerProcess) -> None:
    targets = [
        b"http://t/environ/abs?a=1",
        b"HTTPS://[::1]:8443/environ/abs?a=1#frag",
        b"http://127.0.0.1:/environ/abs?a=1",
    ]
    for target in targets:
        with http_server.connect() as sock:
            sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n")
            status, _, body = Reader(sock).response()
        environ = json.loads(body)
        assert status == 200, target
        assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/environ/abs", "a=1")
        assert environ["RAW_URI"] == target.decode()


def _malformed_targets() -> list[str]:
    """Absolute-form and origin-form targets, each with at least one malformed part.

    Built as every combination of a scheme, an authority and a path, valid or not, keeping
    those with a fault; then a few origin-form ones. None may crash the server or reach the
    application: each must be answered with a 4xx.
    """
    schemes = {"http": True, "HTTPS": True, "s": False, "ftp": False, "1http": False, "": False}
    authorities = {
        "t": True,
        "t:80": True,
        "[::1]": True,
        "[::1]:8080": True,
        "[::1": False,
        "]x": False,
        "::1]": False,
        "[::1]x": False,
        "[zz]": False,
        "[::1%25eth0]": False,
        "[]": False,
        "t:99999": False,
        "t:-1": False,
        "t:1:2": False,
        "t:8o": False,
        "u@t": False,
        "u:p@t:80": False,
        "": False,
        "t%zz": False,
        "t%4": False,
    }
    paths = {"/": True, "/a?b=1": True, "/%zz": False, "/a%": False, "/%4": False, "/%%41": False}
    targets = [
        f"{scheme}://{authority}{path}"
        for (scheme, s_ok), (authority, a_ok), (path, p_ok) in itertools.product(
            schemes.items(), authorities.items(), paths.items()
        )
        if not (s_ok and a_ok and p_ok)
    ]
    targets += [
        "/%zz",
        "/a%",
        "/%4",
        "/a/%g0/b?x",
        "x",
        "?x",
        "*x",
        "http:/x",
        "http:x",
        "ht%74p://t/",
    ]
    return targets


def test_malformed_targets_only_get_4xx(http_server: ServerProcess) -> None:
    logged_before = len(http_server.lines)
    answers = {}
    for target in _malformed_targets():
        raw = f"GET {target} HTTP/1.1\r\n{HOST}\r\n".encode("latin-1")
        answers[target] = exchange(http_server, raw)

    not_4xx = {t: a for t, a in answers.items() if not re.match(rb"HTTP/1\.1 4\d\d ", a)}
    assert len(answers) > 700
    assert not not_4xx, not_4xx
    assert answers["http://[zz]/"].endswith(
        b"400 Bad Request: malformed IPv6 address in the request target\n"
    )
    last = _request_id(list(answers.values())[-1])
    http_server.wait_for_line(re.escape(last))  # its access line: the log is read up to there
    assert not [line for line in http_server.lines[logged_before:] if "Traceback" in line]


def test_every_method_the_server_parses_reaches_the_app(http_server: ServerProcess) -> None:
    # The list in docs/serving.md is the server's own (METHODS); each one is routable.
    for method in METHODS:
        raw = f"{method} /environ/method HTTP/1.1\r\n{HOST}Connection: close\r\n\r\n"
        answer = exchange(http_server, raw.encode())
        assert answer.startswith(b"HTTP/1.1 200 OK"), (method, answer)
        if method != "HEAD":
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["REQUEST_METHOD"] == method
    documented = (REPO / "docs" / "serving.md").read_text()
    assert all(f"`{method}`" in documented for method in METHODS)


def test_refusal_at_the_default_level_is_its_access_line_alone(http_server: ServerProcess) -> None:
    # A client sending junk must not fill the server log: its access line records the refusal.
    request_id = _request_id(exchange(http_server, b"GET /framing/logged HTTP/1.1\r\n\r\n"))

    access = http_server.wait_for_line(r'"path": "/framing/logged"').string
    entry = json.loads(access)
    assert (entry["status"], entry["method"], entry["bytes"]) == (400, "GET", 0)
    assert entry["request_id"] == request_id
    # The reason would have been logged before the access line, by the same worker.
    assert [line for line in http_server.lines if request_id in line] == [access]
    assert not [line for line in http_server.lines if "refused:" in line]


def test_refusal_at_debug_level_is_one_line_beside_its_access_line(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "rawapp.py", RAW_APP)
    server = start_server("rawapp:app", "--log-level", "debug", "--access-log-format", "json")
    refusals = {
        b"GET /framing/logged HTTP/1.1\r\n\r\n": "HTTP/1.1 requires exactly one Host header",
        f"GET http://[::1/framing/logged HTTP/1.1\r\n{HOST}\r\n".encode(): (
            "malformed host or port in the request target"
        ),
        f"GET http://[zz]/framing/logged HTTP/1.1\r\n{HOST}\r\n".encode(): (
            "malformed IPv6 address in the request target"
        ),
    }

    for raw, reason in refusals.items():
        request_id = _request_id(exchange(server, raw))

        access = server.wait_for_line(rf'"request_id": "{re.escape(request_id)}"').string
        assert json.loads(access)["status"] == 400
        refusal, logged_access = [line for line in server.lines if request_id in line]
        assert logged_access == access
        assert re.search(
            rf"DEBUG microback\.server: request from 127\.0\.0\.1 refused: "
            rf"400 {re.escape(reason)} \({re.escape(request_id)}\)$",
            refusal,
        ), refusal


def test_an_unsupported_version_is_logged_as_the_version_sent(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "rawapp.py", RAW_APP)
    server = start_server("rawapp:app", "--access-log-format", "json")
    answer = exchange(server, f"GET /framing/v99 HTTP/9.9\r\n{HOST}\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 505 ")
    request_id = _request_id(answer)

    access = json.loads(server.wait_for_line(rf'"request_id": "{re.escape(request_id)}"').string)
    assert (access["status"], access["protocol"], access["path"]) == (
        505,
        "HTTP/9.9",
        "/framing/v99",
    )


def _request_id(answer: bytes) -> str:
    match = re.search(rb"\r\nX-Request-ID: (\S+)\r\n", answer)
    assert match, answer
    return match.group(1).decode()


def test_leading_whitespace_in_content_length_is_optional_whitespace(
    http_server: ServerProcess,
) -> None:
    # RFC 9110 §5.5: whitespace around a field value is not part of it.
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length:   3  \r\nConnection: close\r\n\r\nabc"
    )

    answer = exchange(http_server, raw)

    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b'"body": "abc"' in answer


def test_header_names_with_underscores_are_dropped(http_server: ServerProcess) -> None:
    # X_User would arrive as HTTP_X_USER, the key of X-User, which a proxy may have vetted.
    raw = (
        b"GET /environ HTTP/1.1\r\nHost: t\r\nX_User: forged\r\nX-Role: user\r\nX_Role: admin\r\n"
        b"Connection: close\r\n\r\n"
    )

    environ = json.loads(exchange(http_server, raw).partition(b"\r\n\r\n")[2])

    assert "HTTP_X_USER" not in environ
    assert environ["HTTP_X_ROLE"] == "user"


def test_response_header_with_crlf_is_refused_with_500_not_split(
    http_server: ServerProcess,
) -> None:
    with http_server.connect() as sock:
        sock.sendall(b"GET /bad-header HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = Reader(sock).response()

    assert status == 500
    assert "Set-Cookie" not in headers and "X-Evil" not in headers
    assert b"should not be sent" not in body
    http_server.wait_for_line(r"InvalidResponse: response header 'X-Evil' has CR, LF or NUL")


def test_each_response_header_value_is_checked_even_after_the_same_name_passed(
    http_server: ServerProcess,
) -> None:
    def get(query: str) -> tuple[int, object, bytes]:
        with http_server.connect() as sock:
            sock.sendall(f"GET /header?{query} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            return Reader(sock).response()

    first, again = get("safe"), get("safe")
    injected = get("safe%0d%0aSet-Cookie:%20injected=1")
    not_latin1 = get("snow%E2%98%83man")

    assert [first[0], again[0]] == [200, 200]
    assert first[1]["X-Value"] == again[1]["X-Value"] == "safe"  # type: ignore[index]
    assert injected[0] == 500 and "Set-Cookie" not in injected[1]  # type: ignore[operator]
    assert not_latin1[0] == 500
    http_server.wait_for_line(r"InvalidResponse: response header is not latin-1")


def test_upgrade_request_is_answered_and_the_connection_closed(
    http_server: ServerProcess,
) -> None:
    # No WebSocket support: the request is served as a plain one, nothing after it is parsed.
    raw = (
        b"GET /framing/upgrade HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket"
        b"\r\n\r\nGET /framing/after-upgrade HTTP/1.1\r\nHost: t\r\n\r\n"
    )

    answer = exchange(http_server, raw)

    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert _responses(answer) == 1
    assert "/framing/after-upgrade" not in _seen(http_server)


def _seen(server: ServerProcess) -> list[str]:
    with server.connect() as sock:
        sock.sendall(b"GET /seen HTTP/1.1\r\nHost: t\r\n\r\n")
        _, _, body = Reader(sock).response()
    seen: list[str] = json.loads(body)
    return seen


def _responses(answer: bytes) -> int:
    return len(re.findall(rb"(?m)^HTTP/1\.1 \d{3} ", answer))
