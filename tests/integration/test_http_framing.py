"""Strict HTTP/1.1 framing (RFC 9112): each malformed request is refused and never reaches the app.

Every case goes over a raw socket to the shared server: the answer must be the expected status,
the connection must then be closed, and the app must never have seen the request's path.
Cases marked "llhttp" are refused by the parser itself; the others by microback's own checks
(microback/server/parsing.py).
"""

from __future__ import annotations

import json
import re

import pytest

from .conftest import Reader, ServerProcess, exchange

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
    # Request line: llhttp (method, target, version syntax) and ours (versions, CONNECT)
    ("lower-case-method", 400, "get {t} HTTP/1.1\r\n{h}\r\n"),
    ("unknown-method", 400, "FOO {t} HTTP/1.1\r\n{h}\r\n"),
    ("space-in-target", 400, "GET {t} x HTTP/1.1\r\n{h}\r\n"),
    ("ctl-in-target", 400, "GET {t}\x01 HTTP/1.1\r\n{h}\r\n"),
    ("http-1.2", 400, "GET {t} HTTP/1.2\r\n{h}\r\n"),
    ("http-2.0", 505, "GET {t} HTTP/2.0\r\n{h}\r\n"),
    ("http-0.9", 505, "GET {t}\r\n\r\n"),
    ("connect", 501, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
    # Host: ours
    ("no-host", 400, "GET {t} HTTP/1.1\r\n\r\n"),
    ("two-hosts", 400, "GET {t} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
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


def test_refusal_is_logged_as_one_access_line_and_a_reason(http_server: ServerProcess) -> None:
    exchange(http_server, b"GET /framing/logged HTTP/1.1\r\n\r\n")

    http_server.wait_for_line(r"refused: 400 HTTP/1\.1 requires exactly one Host header")
    line = http_server.wait_for_line(r'"path": "/framing/logged"').string
    entry = json.loads(line)
    assert (entry["status"], entry["method"], entry["bytes"]) == (400, "GET", 0)


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
