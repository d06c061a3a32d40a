"""The six TechEmpower tests and a param route in raw WSGI: a dict of handlers, plain peewee
models.

The baseline the frameworks are measured against: no framework, only what the tests need.
"""

from __future__ import annotations

import json
import random
import re
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qs

from suite import (
    EXTRA_FORTUNE,
    HELLO,
    ROWS,
    fortunes_html,
    plain_database,
    plain_models,
    query_count,
)

PLAIN = "text/plain"
JSON = "application/json"
HTML = "text/html; charset=utf-8"


def create_app(database_url: str) -> Any:
    database = plain_database(database_url)
    World, Fortune = plain_models(database)

    def as_json(world: Any) -> dict[str, int]:
        return {"id": world.id, "randomNumber": world.random_number}

    def queries_parameter(environ: dict[str, Any]) -> int:
        values = parse_qs(environ.get("QUERY_STRING", "")).get("queries")
        return query_count(values[0] if values else None)

    def plaintext(environ):
        return PLAIN, HELLO.encode()

    def json_(environ):
        return JSON, json.dumps({"message": HELLO}).encode()

    def single_query(environ):
        return JSON, json.dumps(as_json(World.get_by_id(random.randint(1, ROWS)))).encode()

    def queries(environ):
        count = queries_parameter(environ)
        worlds = [as_json(World.get_by_id(random.randint(1, ROWS))) for _ in range(count)]
        return JSON, json.dumps(worlds).encode()

    def fortunes(environ):
        rows = [(fortune.id, fortune.message) for fortune in Fortune.select()]
        rows.append((0, EXTRA_FORTUNE))
        rows.sort(key=itemgetter(1))
        return HTML, fortunes_html(rows).encode()

    def updates(environ):
        count = queries_parameter(environ)
        # Distinct ids, sorted: see app_microback.py.
        ids = sorted(random.sample(range(1, ROWS + 1), count))
        worlds = [World.get_by_id(world_id) for world_id in ids]
        for world in worlds:
            world.random_number = random.randint(1, ROWS)
        World.bulk_update(worlds, fields=[World.random_number])
        return JSON, json.dumps([as_json(world) for world in worlds]).encode()

    user_path = re.compile(r"/users/([0-9]+)\Z").match  # the one route with a variable

    def user(environ):
        return JSON, json.dumps({"id": int(user_path(environ["PATH_INFO"])[1])}).encode()

    routes = {
        "/plaintext": plaintext,
        "/json": json_,
        "/db": single_query,
        "/queries": queries,
        "/fortunes": fortunes,
        "/updates": updates,
    }

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        handler = routes.get(path) or (user if user_path(path) else None)
        if handler is None or environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            start_response("404 Not Found", [("Content-Type", PLAIN), ("Content-Length", "9")])
            return [b"Not Found"]
        try:
            content_type, body = handler(environ)  # an exception is the server's 500
        finally:
            # The first query connected (peewee's autoconnect); give the connection back.
            if not database.is_closed():
                database.close()
        start_response(
            "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app
