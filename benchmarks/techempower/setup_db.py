"""Create and fill TechEmpower's tables: ``world`` (10,000 rows) and ``fortune`` (12 rows).

    python benchmarks/techempower/setup_db.py --sqlite bench.db
    python benchmarks/techempower/setup_db.py --postgresql postgresql://postgres@127.0.0.1:5432/postgres

``--sqlite PATH`` (re)creates a SQLite file; ``--postgresql SERVER_URL`` (re)creates the
database ``microback_bench`` on that server (the URL names any existing database to connect
to, ``postgres`` usually) and prints its URL. Either way the tables are dropped first, so a
run always starts from the same state (the updates test changes ``world``).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
from pathlib import Path

from suite import FORTUNES, ROWS

POSTGRESQL_NAME = "microback_bench"
SCHEMA = [
    "DROP TABLE IF EXISTS world",
    "DROP TABLE IF EXISTS fortune",
    "CREATE TABLE world (id INTEGER PRIMARY KEY, randomnumber INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE fortune (id INTEGER PRIMARY KEY, message VARCHAR(2048) NOT NULL)",
]


def worlds() -> list[tuple[int, int]]:
    return [(i, random.randint(1, ROWS)) for i in range(1, ROWS + 1)]


def fill_sqlite(path: Path | str) -> str:
    """Create the tables in the SQLite file at ``path``; return its ``sqlite:///`` URL."""
    path = Path(path).resolve()
    connection = sqlite3.connect(path)
    try:
        # WAL is a property of the file; microback.db and plain_database() also ask for it.
        connection.execute("PRAGMA journal_mode=wal")
        for statement in SCHEMA:
            connection.execute(statement)
        connection.executemany("INSERT INTO world VALUES (?, ?)", worlds())
        connection.executemany("INSERT INTO fortune VALUES (?, ?)", FORTUNES)
        connection.commit()
    finally:
        connection.close()
    return f"sqlite:///{path}"


def fill_postgresql(server_url: str, name: str = POSTGRESQL_NAME) -> str:
    """(Re)create the database ``name`` on the server of ``server_url``; return its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in SCHEMA:
            connection.execute(statement)
        with connection.cursor().copy("COPY world (id, randomnumber) FROM STDIN") as copy:
            for row in worlds():
                copy.write_row(row)
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO fortune VALUES (%s, %s)", FORTUNES)
        connection.execute("ANALYZE")
    return url


def drop_postgresql(server_url: str, name: str = POSTGRESQL_NAME) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--sqlite", metavar="PATH", help="the SQLite file to (re)create")
    target.add_argument("--postgresql", metavar="SERVER_URL", help="a PostgreSQL server URL")
    options = parser.parse_args()
    if options.sqlite:
        print(fill_sqlite(options.sqlite))
    else:
        print(fill_postgresql(options.postgresql))


if __name__ == "__main__":
    main()
