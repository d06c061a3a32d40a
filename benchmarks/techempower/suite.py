"""What the five implementations share: TechEmpower's data and rules, and plain peewee.

The test types follow TechEmpower's requirements
(https://github.com/TechEmpower/FrameworkBenchmarks/wiki/Project-Information-Framework-Tests-Overview):

- plaintext ``/plaintext``: ``Hello, World!`` as ``text/plain``;
- JSON ``/json``: ``{"message": "Hello, World!"}``, serialized per request;
- param route ``/users/<id>``: ``{"id": <id>}``, the id read from the path as an integer by
  the framework's router (not a TechEmpower test: issue 6 sets targets for it);
- single query ``/db``: one random ``World`` row as ``{"id": ..., "randomNumber": ...}``;
- multiple queries ``/queries?queries=N``: a list of N rows, each read by its own query;
  N is clamped to 1..500 and anything that is not an integer counts as 1;
- fortunes ``/fortunes``: every ``Fortune`` row plus one added at request time, sorted by
  message, in an HTML table, escaped;
- updates ``/updates?queries=N``: N rows read one by one, each given a new random number,
  written back (one batched statement is allowed), and returned.

Every implementation reads the same tables through peewee models. microback uses
``microback.db``; Flask, Bottle, Falcon and raw WSGI use :func:`plain_database` and
:func:`plain_models`: the same pool size and a bounded wait for a pooled connection, as
``microback.db`` has (peewee's own default is to refuse the 21st request at once).
"""

from __future__ import annotations

import html
import importlib
import os
from typing import Any

ROWS = 10_000
MAX_QUERIES = 500
#: microback.db's default max_connections; ``BENCH_POOL_SIZE`` sets another for every framework
#: (benchmarks/server/README.md, "The /db tail").
POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "20"))
POOL_TIMEOUT = 5  # seconds; microback.db's default pool_timeout
STALE_TIMEOUT = 600  # seconds; microback.db's default stale_timeout

HELLO = "Hello, World!"
PARAM_ID = 42  # the id the param route is loaded with
EXTRA_FORTUNE = "Additional fortune added at request time."

#: TechEmpower's fortune table, id and message.
FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
]

#: The implementations, by name: the module that has ``create_app(database_url)``.
FRAMEWORKS = {
    "raw": "app_raw",
    "microback": "app_microback",
    "falcon": "app_falcon",
    "bottle": "app_bottle",
    "flask": "app_flask",
}
LABELS = {
    "raw": "raw WSGI",
    "microback": "microback",
    "falcon": "Falcon",
    "bottle": "Bottle",
    "flask": "Flask",
}
#: The URL each test type loads (multiple queries and updates with TechEmpower's top N).
PATHS = {
    "plaintext": "/plaintext",
    "json": "/json",
    "param": f"/users/{PARAM_ID}",
    "db": "/db",
    "queries": "/queries?queries=20",
    "fortunes": "/fortunes",
    "updates": "/updates?queries=20",
}
DATABASE_TESTS = ("db", "queries", "fortunes", "updates")


def create_app(framework: str, database_url: str) -> Any:
    """Return the WSGI app of ``framework`` (a key of :data:`FRAMEWORKS`) on ``database_url``."""
    module = importlib.import_module(FRAMEWORKS[framework])
    return module.create_app(database_url)


def query_count(raw: str | None) -> int:
    """The ``queries`` parameter as TechEmpower reads it: clamped to 1..500, else 1."""
    if raw is None:
        return 1
    try:
        count = int(raw)
    except ValueError:
        return 1
    return min(max(count, 1), MAX_QUERIES)


def fortunes_html(fortunes: list[tuple[int, str]]) -> str:
    """The fortunes page, for the implementations without a template engine of their own."""
    rows = "".join(
        f"<tr><td>{id_}</td><td>{html.escape(message)}</td></tr>" for id_, message in fortunes
    )
    return (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        f"<tr><th>id</th><th>message</th></tr>{rows}</table></body></html>"
    )


# --- plain peewee, for the four implementations that are not microback -------------------------


def plain_database(url: str) -> Any:
    """A pooled peewee database for ``url`` (``sqlite:///path`` or ``postgresql://...``).

    Tuned as ``microback.db`` tunes its own, so that only the frameworks differ: the same pool
    size, wait and staleness; on SQLite the same pragmas (WAL, ``synchronous=NORMAL``, a busy
    timeout); on PostgreSQL psycopg 3, which cooperates with gevent when imported after the
    patch. Connections are opened by the first query of a request (peewee's autoconnect) and
    must be closed (given back to the pool) when the request ends.
    """
    from playhouse import db_url

    scheme, _, rest = url.partition("://")
    pool = {"max_connections": POOL_SIZE, "timeout": POOL_TIMEOUT, "stale_timeout": STALE_TIMEOUT}
    if scheme == "sqlite":
        pragmas = {"busy_timeout": 2000, "journal_mode": "wal", "synchronous": "NORMAL"}
        return db_url.connect(
            f"sqlite+pool://{rest}", pragmas=pragmas, check_same_thread=False, **pool
        )
    if scheme in ("postgresql", "postgres"):
        return db_url.connect(f"postgresql+pool://{rest}", prefer_psycopg3=True, **pool)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


def plain_models(database: Any) -> tuple[Any, Any]:
    """``(World, Fortune)``: peewee models of TechEmpower's two tables, bound to ``database``.

    Made per app (rather than once at import) so that several apps in one process, as in the
    verification tests, each keep their own database.
    """
    import peewee

    class World(peewee.Model):
        random_number = peewee.IntegerField(column_name="randomnumber")

        class Meta:
            table_name = "world"

    class Fortune(peewee.Model):
        message = peewee.CharField(max_length=2048)

        class Meta:
            table_name = "fortune"

    database.bind([World, Fortune])
    return World, Fortune
