"""The verification rules catch fast but wrong implementations.

Each case is an answer a cheating or careless implementation would give; the rules of
``benchmarks/techempower/verify.py`` must reject it, saying what is wrong.
"""

from __future__ import annotations

import html
import json

import pytest
import suite
import verify

JSON = {"content-type": "application/json"}
HTML = {"content-type": "text/html; charset=utf-8"}
ROW = {"id": 7, "randomNumber": 42}


def page(rows, escape=html.escape) -> bytes:
    cells = "".join(f"<tr><td>{i}</td><td>{escape(m)}</td></tr>" for i, m in rows)
    return (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        f"<tr><th>id</th><th>message</th></tr>{cells}</table></body></html>"
    ).encode()


def framed(headers: dict[str, str], body: bytes) -> dict[str, str]:
    return {**headers, "content-length": str(len(body))}


def body_of(data) -> bytes:
    return json.dumps(data).encode()


SORTED = verify.expected_fortunes()
CASES = {
    "plaintext as HTML": (
        "plaintext",
        {"content-type": "text/html"},
        b"Hello, World!",
        {},
        "Content-Type 'text/html'",
    ),
    "plaintext with a newline": (
        "plaintext",
        {"content-type": "text/plain"},
        b"Hello, World!\n",
        {},
        "body",
    ),
    "JSON without a Content-Type": (
        "json",
        {},
        body_of({"message": "Hello, World!"}),
        {},
        "Content-Type",
    ),
    "JSON with an extra key": (
        "json",
        JSON,
        body_of({"message": "Hello, World!", "x": 1}),
        {},
        "expected {'message'",
    ),
    "a param route answering a string id": (
        "param",
        JSON,
        body_of({"id": "42"}),
        {},
        "expected {'id': 42}",
    ),
    "a param route answering another id": (
        "param",
        JSON,
        body_of({"id": 7}),
        {},
        "expected {'id': 42}",
    ),
    "a row with a string number": (
        "db",
        JSON,
        body_of({"id": 7, "randomNumber": "42"}),
        {},
        "must be an integer",
    ),
    "a row in lower case": (
        "db",
        JSON,
        body_of({"id": 7, "randomnumber": 42}),
        {},
        "a row must be",
    ),
    "a list for a single query": ("db", JSON, body_of([ROW]), {}, "a row must be"),
    "a row for the queries test": ("queries", JSON, body_of(ROW), {"queries": "1"}, "a JSON list"),
    "queries=0 not clamped": ("queries", JSON, body_of([]), {"queries": "0"}, "expected 1"),
    "queries=501 not clamped": (
        "queries",
        JSON,
        body_of([ROW] * 501),
        {"queries": "501"},
        "expected 500",
    ),
    "queries=abc as 0 rows": ("updates", JSON, body_of([]), {"queries": "abc"}, "expected 1"),
    "fortunes not escaped": (
        "fortunes",
        HTML,
        page(SORTED, escape=str),
        {},
        "('start', 'script')",
    ),
    "fortunes sorted by id": (
        "fortunes",
        HTML,
        page(sorted(SORTED)),
        {},
        "expected ('text', '11')",
    ),
    "fortunes without the added one": (
        "fortunes",
        HTML,
        page([row for row in SORTED if row[0] != 0]),
        {},
        "expected ('text', '0')",
    ),
    "fortunes cut short": (
        "fortunes",
        HTML,
        page(SORTED).replace(b"</body></html>", b""),
        {},
        "the page ends early",
    ),
    "fortunes without a charset": (
        "fortunes",
        {"content-type": "text/html"},
        page(SORTED),
        {},
        "Content-Type",
    ),
    "fortunes with an extra element": (
        "fortunes",
        HTML,
        page(SORTED).replace(b"</table>", b"</table><p>ad</p>"),
        {},
        "got ('start', 'p')",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_wrong_answer_is_caught(case):
    test, headers, body, options, expected = CASES[case]
    found = verify.problems(test, 200, framed(headers, body), body, **options)
    assert found, f"{case} passed verification"
    assert expected in " ".join(found)


def test_a_right_fortunes_page_passes():
    assert verify.problems("fortunes", 200, framed(HTML, page(SORTED)), page(SORTED)) == []


def test_a_wrong_status_is_caught():
    assert verify.problems("json", 500, JSON, b"") == ["status 500, expected 200"]


def test_a_wrong_content_length_is_caught():
    body = b"Hello, World!"
    headers = {"content-type": "text/plain", "content-length": "12"}
    assert "Content-Length 12" in verify.problems("plaintext", 200, headers, body)[0]


def test_no_framing_is_caught_and_chunked_passes():
    body = b"Hello, World!"
    plain = {"content-type": "text/plain"}
    assert verify.problems("plaintext", 200, plain, body) == [
        "neither Content-Length nor Transfer-Encoding: chunked"
    ]
    chunked = {**plain, "transfer-encoding": "chunked"}
    assert verify.problems("plaintext", 200, chunked, body) == []


def test_server_and_date_are_required_over_http():
    body = b"Hello, World!"
    headers = framed({"content-type": "text/plain"}, body)
    assert verify.problems("plaintext", 200, headers, body, server_headers=True) == [
        "no Server header",
        "no Date header",
    ]
    headers.update(server="x", date="yesterday")
    assert verify.problems("plaintext", 200, headers, body, server_headers=True) == [
        "Date 'yesterday' is not an HTTP date"
    ]
    headers["date"] = "Wed, 25 Nov 2026 10:23:17 GMT"
    assert verify.problems("plaintext", 200, headers, body, server_headers=True) == []


def test_rows_not_read_or_not_written_are_caught():
    database = {7: 42, 8: 1}
    assert verify.rows_problems([{"id": 7, "randomNumber": 42}], database) == []
    # Made up instead of read, or a new number answered but never written:
    assert verify.rows_problems([{"id": 8, "randomNumber": 9}], database) == [
        "answered {'id': 8, 'randomNumber': 9}, but the database holds randomNumber=1"
    ]


@pytest.mark.parametrize(
    ("raw", "count"),
    [(None, 1), ("", 1), ("x", 1), ("1.5", 1), ("-3", 1), ("0", 1), ("7", 7), ("999", 500)],
)
def test_the_apps_clamp_as_the_rules_expect(raw, count):
    assert verify.expected_count(raw) == count
    assert suite.query_count(raw) == count
