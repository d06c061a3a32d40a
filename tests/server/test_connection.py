"""HTTP/1.1 behaviour of ``microback serve`` over raw sockets: keep-alive, pipelining,
``Expect: 100-continue``, chunked bodies both ways, HTTP/1.0, HEAD, the environ, ``close()``."""

from __future__ import annotations

import json
import re
import socket

from serving import Reader, ServerProcess, exchange, read_all


def _get(server: ServerProcess, path: str) -> object:
    with server.connect() as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        return json.loads(Reader(sock).response()[2])


def test_pipelined_requests_are_answered_in_order(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(
            b"GET /echo?n=1 HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /echo?n=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /echo?n=3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
            b"GET /echo?n=4 HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        reader = Reader(sock)
        bodies = [json.loads(reader.response()[2]) for _ in range(4)]

    assert [(b["query"], b["body"]) for b in bodies] == [
        ("n=1", ""),
        ("n=2", "hello"),
        ("n=3", "abc"),
        ("n=4", ""),
    ]


def test_100_continue_is_sent_when_the_body_is_read_then_a_pipelined_request(
    http_server: ServerProcess,
) -> None:
    with http_server.connect() as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        sock.sendall(b"hello" + b"GET /echo?after=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = Reader(sock)
        first = reader.response()
        second = reader.response()

    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert (first[0], json.loads(first[2])["body"]) == (200, "hello")
    assert (second[0], json.loads(second[2])["query"]) == (200, "after=1")


def test_100_continue_is_not_sent_when_the_app_does_not_read(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(
            b"POST /no-read HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        answer = read_all(sock)  # closed: the body the client holds back cannot be skipped

    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"100 Continue" not in answer
    assert re.search(rb"(?im)^connection: close\r$", answer)


def test_chunked_upload_with_extensions_and_trailers(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(b"POST /lines HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"4;ext=1\r\none\n\r\n")
        sock.sendall(b"8\r\ntwo\nthre\r\n2\r\ne\n\r\n0\r\nX-Trailer: t\r\n\r\n")
        status, _, body = Reader(sock).response()

    assert status == 200
    assert json.loads(body) == ["one\n", "two\n", "three\n"]


def test_environ_of_a_chunked_upload_has_no_content_length(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        body = json.loads(Reader(sock).response()[2])

    assert body["content_length"] is None


def test_streamed_response_is_chunked_and_its_close_is_called(http_server: ServerProcess) -> None:
    before = _get(http_server, "/closed")["count"]  # type: ignore[index]
    with http_server.connect() as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = Reader(sock).response()

    assert (status, body) == (200, b"one,two,three")
    assert headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in headers
    assert _get(http_server, "/closed")["count"] == before + 1  # type: ignore[index]


def test_failure_mid_stream_closes_without_the_last_chunk(http_server: ServerProcess) -> None:
    before = _get(http_server, "/closed")["count"]  # type: ignore[index]

    answer = exchange(http_server, b"GET /stream-fails HTTP/1.1\r\nHost: t\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert not answer.endswith(b"0\r\n\r\n")  # the client can tell the body is incomplete
    assert _get(http_server, "/closed")["count"] == before + 1  # type: ignore[index]
    http_server.wait_for_line("RuntimeError: failed while streaming")


def test_write_callable_and_file_wrapper(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(
            b"GET /write HTTP/1.1\r\nHost: t\r\n\r\nGET /file HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        reader = Reader(sock)
        written = reader.response()
        filed = reader.response()

    assert written[2] == b"written,returned"
    assert filed[2] == b"x" * 100000


def test_body_longer_than_content_length_is_cut_and_the_connection_closed(
    http_server: ServerProcess,
) -> None:
    answer = exchange(http_server, b"GET /too-long HTTP/1.1\r\nHost: t\r\n\r\n")

    assert answer.endswith(b"\r\n\r\nabc")


def test_a_remembered_content_length_still_frames_every_body(http_server: ServerProcess) -> None:
    # The server remembers header lines it has checked; the length must still hold each time.
    with http_server.connect() as sock:
        sock.sendall(b"GET /length?5 HTTP/1.1\r\nHost: t\r\n\r\n" * 2)
        reader = Reader(sock)
        assert [reader.response()[2] for _ in range(2)] == [b"xxxxx", b"xxxxx"]

    longer = exchange(http_server, b"GET /length?8 HTTP/1.1\r\nHost: t\r\n\r\n")
    shorter = exchange(http_server, b"GET /length?3 HTTP/1.1\r\nHost: t\r\n\r\n")

    assert longer.endswith(b"\r\n\r\nxxxxx")  # cut at 5, then the connection closed
    assert b"Content-Length: 5\r\n" in shorter and shorter.endswith(b"\r\n\r\nxxx")


def test_http_10_closes_unless_keep_alive_is_asked(http_server: ServerProcess) -> None:
    closed = exchange(http_server, b"GET /stream HTTP/1.0\r\n\r\n")
    with http_server.connect() as sock:
        sock.sendall(b"GET /echo?n=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        reader = Reader(sock)
        status, headers, _ = reader.response()
        sock.sendall(b"GET /echo?n=2 HTTP/1.0\r\n\r\n")
        second = reader.response()

    # An HTTP/1.0 client cannot read chunks: the end of the body is the end of the connection.
    assert closed.startswith(b"HTTP/1.1 200 OK") and closed.endswith(b"\r\n\r\none,two,three")
    assert b"chunked" not in closed
    assert (status, headers["Connection"]) == (200, "keep-alive")
    assert json.loads(second[2])["query"] == "n=2"


def test_head_has_the_headers_of_get_and_no_body(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(
            b"HEAD /no-read HTTP/1.1\r\nHost: t\r\n\r\nGET /no-read HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        reader = Reader(sock)
        head = reader.response(method="HEAD")
        get = reader.response()

    assert head[0] == 200 and head[2] == b""
    assert get[0] == 200
    assert head[1]["Content-Length"] == get[1]["Content-Length"] == str(len(get[2]))


def test_environ_follows_pep_3333(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(
            b"POST /environ/a%20b%2Fc?x=1&y=%20 HTTP/1.1\r\nHost: example.test:8080\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 0\r\nX-Multi: one\r\nX-Multi: two\r\n"
            b"Cookie: a=1\r\nCookie: b=2\r\nX-Latin: caf\xe9\r\n\r\n"
        )
        port = sock.getsockname()[1]
        environ = json.loads(Reader(sock).response()[2])

    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/environ/a b/c"
    assert environ["RAW_URI"] == "/environ/a%20b%2Fc?x=1&y=%20"
    assert environ["QUERY_STRING"] == "x=1&y=%20"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["SERVER_NAME"] == "127.0.0.1"
    assert environ["SERVER_PORT"] == str(http_server.port)
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("127.0.0.1", str(port))
    assert (environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]) == ("text/plain", "0")
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["HTTP_HOST"] == "example.test:8080"
    assert environ["HTTP_X_MULTI"] == "one,two"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["HTTP_X_LATIN"] == "caf\xe9"  # latin-1 bytes as a native string
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.multithread"] is False
    assert re.fullmatch(r"[0-9a-f]{10}-[0-9a-f]+", environ["microback.request_id"])


def test_date_server_and_request_id_headers(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(
            b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Request-ID: req-42\r\n\r\n"
            b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Request-ID: bad id\r\n\r\n"
        )
        reader = Reader(sock)
        generated, given, replaced = (reader.response()[1] for _ in range(3))

    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", generated["Date"])
    assert generated["Server"] == "microback"
    assert re.fullmatch(r"[0-9a-f]{10}-[0-9a-f]+", generated["X-Request-ID"])
    assert given["X-Request-ID"] == "req-42"
    assert replaced["X-Request-ID"] not in ("bad id", generated["X-Request-ID"])


def test_app_exception_is_a_bare_500(http_server: ServerProcess) -> None:
    with http_server.connect() as sock:
        sock.sendall(b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = Reader(sock).response()

    assert status == 500
    assert b"kaboom" not in body
    assert headers["Connection"] == "close"
    http_server.wait_for_line("RuntimeError: kaboom from the raw app")


def test_client_gone_mid_request_does_not_disturb_the_server(http_server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", http_server.port)) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npartial")
    assert _get(http_server, "/echo?still=up")["query"] == "still=up"  # type: ignore[index]
