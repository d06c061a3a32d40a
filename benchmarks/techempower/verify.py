"""TechEmpower's verification rules: what a response to each test type must be.

:func:`problems` takes a response (status, headers, body) and returns what is wrong with it,
as sentences; an empty list means it passes. The verification tests
(``tests/benchmarks/``) apply it in-process through webtest, and ``run.py`` over HTTP before
it measures anything, so a fast but wrong implementation is never counted.

What is checked (after TechEmpower's ``verifications.py``):

- status 200; ``Content-Type``: ``text/plain`` for plaintext (a ``charset=utf-8`` may
  follow), ``application/json`` for JSON (no parameter but ``charset=utf-8``), and
  ``text/html; charset=utf-8`` for fortunes;
- framing: a ``Content-Length`` equal to the body's length, or ``Transfer-Encoding:
  chunked`` (over HTTP only);
- ``Server`` and ``Date`` (a valid HTTP date) when ``server_headers`` is set: these come from
  the server, so an in-process call cannot have them;
- bodies: plaintext, JSON and the param route's ``{"id": 42}`` exactly; a row is
  ``{"id": 1..10000, "randomNumber": 1..10000}`` with integer values; the queries and
  updates tests answer a list of exactly the clamped number of rows; the fortunes page has
  exactly TechEmpower's structure (``<!DOCTYPE html>``, title, one table, a header row, a
  row per fortune and nothing else), with every fortune plus the one added at request time,
  sorted by message, and escaped — an unescaped ``<script>`` becomes an element, which fails
  the structure check.

Whether rows come from the database and updates are written is for the caller to check
against the database: see :func:`rows_problems`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from suite import EXTRA_FORTUNE, FORTUNES, HELLO, MAX_QUERIES, PARAM_ID, ROWS

CONTENT_TYPES = {
    "plaintext": ("text/plain", "text/plain;charset=utf-8"),
    "json": ("application/json", "application/json;charset=utf-8"),
    "param": ("application/json", "application/json;charset=utf-8"),
    "db": ("application/json", "application/json;charset=utf-8"),
    "queries": ("application/json", "application/json;charset=utf-8"),
    "updates": ("application/json", "application/json;charset=utf-8"),
    "fortunes": ("text/html;charset=utf-8",),
}


def expected_fortunes(extra: Sequence[tuple[int, str]] = ()) -> list[tuple[int, str]]:
    """TechEmpower's fortunes (plus ``extra`` rows) and the request-time one, as they must
    appear: sorted by message."""
    return sorted([*FORTUNES, *extra, (0, EXTRA_FORTUNE)], key=lambda row: row[1])


def expected_count(raw: str | None) -> int:
    """How many rows ``?queries=raw`` must answer, computed independently of the apps'
    ``suite.query_count``: an integer clamped to 1..500, anything else 1."""
    if raw is None or not re.fullmatch(r"\s*[+-]?[0-9]+\s*", raw):
        return 1
    return min(max(int(raw), 1), MAX_QUERIES)


def problems(
    test: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    queries: str | None = None,
    server_headers: bool = False,
    fortunes: list[tuple[int, str]] | None = None,
) -> list[str]:
    """What is wrong with this response to ``test`` (a key of ``suite.PATHS``).

    ``headers`` maps lower-case names to values. ``queries`` is the raw ``queries`` parameter
    sent to the queries and updates tests; ``fortunes`` the rows the fortunes page must show
    (default: :func:`expected_fortunes`).
    """
    found: list[str] = []
    if status != 200:
        return [f"status {status}, expected 200"]
    content_type = headers.get("content-type", "")
    if content_type.replace(" ", "").lower() not in CONTENT_TYPES[test]:
        found.append(
            f"Content-Type {content_type!r}, expected {CONTENT_TYPES[test][0]!r}"
            + (" (or with ;charset=utf-8)" if len(CONTENT_TYPES[test]) > 1 else "")
        )
    found += _framing_problems(headers, body)
    if server_headers:
        found += _server_header_problems(headers)
    if test == "plaintext":
        if body != HELLO.encode():
            found.append(f"body {body[:80]!r}, expected {HELLO!r}")
    elif test == "fortunes":
        found += _fortunes_problems(body, expected_fortunes() if fortunes is None else fortunes)
    else:
        found += _json_problems(test, body, queries)
    return found


def _framing_problems(headers: Mapping[str, str], body: bytes) -> list[str]:
    length = headers.get("content-length")
    if length is not None:
        if length != str(len(body)):
            return [f"Content-Length {length}, but the body has {len(body)} bytes"]
        return []
    if headers.get("transfer-encoding", "").lower() != "chunked":
        return ["neither Content-Length nor Transfer-Encoding: chunked"]
    return []


def _server_header_problems(headers: Mapping[str, str]) -> list[str]:
    found = []
    if not headers.get("server"):
        found.append("no Server header")
    date = headers.get("date")
    if not date:
        found.append("no Date header")
    else:
        try:
            parsedate_to_datetime(date)
        except (TypeError, ValueError):
            found.append(f"Date {date!r} is not an HTTP date")
    return found


def _json_problems(test: str, body: bytes, queries: str | None) -> list[str]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        return [f"the body is not JSON ({exc}): {body[:80]!r}"]
    if test == "json":
        if data != {"message": HELLO}:
            return [f"JSON {data!r}, expected {{'message': {HELLO!r}}}"]
        return []
    if test == "param":
        if data != {"id": PARAM_ID} or type(data["id"]) is not int:
            return [f"JSON {data!r}, expected {{'id': {PARAM_ID}}} (an integer)"]
        return []
    if test == "db":
        return _row_problems(data)
    if not isinstance(data, list):
        return [f"expected a JSON list of rows, got {type(data).__name__}: {body[:80]!r}"]
    found = []
    count = expected_count(queries)
    if len(data) != count:
        found.append(f"{len(data)} rows for queries={queries!r}, expected {count}")
    for row in data:
        found += _row_problems(row)
        if found:
            break
    return found


def _row_problems(row: Any) -> list[str]:
    if not isinstance(row, dict) or set(row) != {"id", "randomNumber"}:
        return [f'a row must be {{"id": ..., "randomNumber": ...}}, got {row!r}']
    for key, value in row.items():
        if type(value) is not int or not 1 <= value <= ROWS:
            return [f"{key} must be an integer from 1 to {ROWS}, got {value!r} in {row!r}"]
    return []


def rows_problems(rows: list[dict[str, int]], database: Mapping[int, int]) -> list[str]:
    """What returned ``rows`` get wrong about the ``world`` table (``{id: randomnumber}``,
    read after the request): a row the database does not hold was not read (or, for
    updates, not written)."""
    found = []
    for row in rows:
        stored = database.get(row["id"])
        if stored != row["randomNumber"]:
            found.append(f"answered {row}, but the database holds randomNumber={stored}")
    return found


class _Tokens(HTMLParser):
    """The page as a flat list of tokens: tags, and text with its entities decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[tuple[str, str]] = []

    def handle_decl(self, decl: str) -> None:
        self.tokens.append(("decl", decl.lower()))

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tokens.append(("start", tag))

    def handle_endtag(self, tag: str) -> None:
        self.tokens.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.tokens.append(("text", data.strip()))


def _fortune_tokens(fortunes: list[tuple[int, str]]) -> list[tuple[str, str]]:
    tokens = [("decl", "doctype html"), ("start", "html"), ("start", "head")]
    tokens += [("start", "title"), ("text", "Fortunes"), ("end", "title"), ("end", "head")]
    tokens += [("start", "body"), ("start", "table"), ("start", "tr")]
    for cell in ("id", "message"):
        tokens += [("start", "th"), ("text", cell), ("end", "th")]
    tokens.append(("end", "tr"))
    for id_, message in fortunes:
        tokens.append(("start", "tr"))
        for cell in (str(id_), message):
            tokens += [("start", "td"), ("text", cell), ("end", "td")]
        tokens.append(("end", "tr"))
    return [*tokens, ("end", "table"), ("end", "body"), ("end", "html")]


def _fortunes_problems(body: bytes, fortunes: list[tuple[int, str]]) -> list[str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return ["the fortunes page is not UTF-8"]
    parser = _Tokens()
    parser.feed(text)
    parser.close()
    expected = _fortune_tokens(fortunes)
    if parser.tokens == expected:
        return []
    for index, (got, want) in enumerate(zip(parser.tokens, expected, strict=False)):
        if got != want:
            return [f"fortunes page: at token {index}, expected {want}, got {got}"]
    return [
        f"fortunes page: {len(parser.tokens)} tokens, expected {len(expected)} "
        f"(the page ends early or has more after the table)"
    ]
