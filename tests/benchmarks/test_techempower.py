"""TechEmpower's verification rules, applied to every implementation in-process (webtest).

Each test runs once per implementation (``test_x[flask]``) on a SQLite file filled by the
``bench_database`` fixture. ``Server`` and ``Date`` come from the server, not the app; they are
checked over HTTP in ``test_serve.py`` (microback under ``microback serve``) and, for every
server and implementation, by ``run.py`` before it measures.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3

import pytest
import suite
import verify

from microback.testing import TestClient


def get(app, path: str):
    response = TestClient(app).get(path, expect_errors=True)
    headers = {name.lower(): value for name, value in response.headerlist}
    return response, headers


def check(app, test: str, path: str, **options) -> object:
    response, headers = get(app, path)
    assert verify.problems(test, response.status_int, headers, response.body, **options) == []
    return response


def test_fortune_rows_are_techempowers_byte_for_byte():
    # The SHA-256 of the 12 messages of TechEmpower's Fortune table, one a line, as its
    # toolset/databases/postgres/create-postgres.sql inserts them (row 3 once read "decimal
    # points" where TechEmpower has "decimal places").
    messages = "\n".join(message for _, message in suite.FORTUNES)
    assert [row_id for row_id, _ in suite.FORTUNES] == list(range(1, 13))
    assert suite.FORTUNES[2][1] == "After enough decimal places, nobody gives a damn."
    assert hashlib.sha256(messages.encode()).hexdigest() == (
        "b6160b43053436f3be1715301dfe2a64937e915c223fb0c0444bfb9df7acdd5a"
    )


def test_plaintext(bench_app):
    response = check(bench_app, "plaintext", "/plaintext")
    assert response.body == b"Hello, World!"


def test_json(bench_app):
    response = check(bench_app, "json", "/json")
    assert response.json == {"message": "Hello, World!"}


def test_param_route_reads_the_id_from_the_path(bench_app):
    response = check(bench_app, "param", "/users/42")
    assert response.json == {"id": 42}
    assert get(bench_app, "/users/7")[0].json == {"id": 7}  # not a constant answer
    assert get(bench_app, "/users/seven")[0].status_int == 404  # an int variable


def test_single_query_answers_random_rows_from_the_database(bench_app, world_table):
    rows = [check(bench_app, "db", "/db").json for _ in range(10)]
    assert verify.rows_problems(rows, world_table()) == []
    assert len({row["id"] for row in rows}) > 1, "always the same row: not random"


@pytest.mark.parametrize(
    ("raw", "count"),
    [(None, 1), ("1", 1), ("20", 20), ("0", 1), ("-5", 1), ("abc", 1), ("", 1), ("501", 500)],
)
def test_queries_are_clamped(bench_app, world_table, raw, count):
    path = "/queries" if raw is None else f"/queries?queries={raw}"
    rows = check(bench_app, "queries", path, queries=raw).json
    assert len(rows) == count
    assert verify.rows_problems(rows, world_table()) == []


def test_fortunes_are_sorted_and_escaped(bench_app):
    response = check(bench_app, "fortunes", "/fortunes")
    assert b"<script>" not in response.body
    assert "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af" in response.text  # UTF-8, not entities
    # What a browser shows: the <script> row first, then by message, the added one included.
    messages = [message for _, message in verify.expected_fortunes()]
    assert messages[0].startswith("<script>")
    assert "Additional fortune added at request time." in messages


def test_fortunes_come_from_the_database(bench_app, bench_database):
    added = (13, "<b>New</b> & 'quoted' \"fortune\"")
    with contextlib.closing(sqlite3.connect(bench_database)) as connection:
        connection.execute("INSERT INTO fortune VALUES (?, ?)", added)
        connection.commit()
        try:
            check(bench_app, "fortunes", "/fortunes", fortunes=verify.expected_fortunes([added]))
        finally:
            connection.execute("DELETE FROM fortune WHERE id = 13")
            connection.commit()


def test_updates_are_written(bench_app, world_table):
    before = world_table()
    rows = check(bench_app, "updates", "/updates?queries=20", queries="20").json
    after = world_table()
    assert verify.rows_problems(rows, after) == []
    assert len({row["id"] for row in rows}) == 20
    changed = [row for row in rows if before[row["id"]] != row["randomNumber"]]
    assert changed, "no row got a new number"


@pytest.mark.parametrize(("raw", "count"), [("0", 1), ("abc", 1), ("501", 500)])
def test_updates_are_clamped(bench_app, world_table, raw, count):
    rows = check(bench_app, "updates", f"/updates?queries={raw}", queries=raw).json
    assert len(rows) == count
    assert verify.rows_problems(rows, world_table()) == []


def test_unknown_path_is_404(bench_app):
    response, _ = get(bench_app, "/nowhere")
    assert response.status_int == 404


def test_every_test_type_has_a_path():
    assert set(suite.PATHS) == set(verify.CONTENT_TYPES)
