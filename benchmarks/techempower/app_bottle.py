"""The six TechEmpower tests and a param route in Bottle, with plain peewee models (see
suite.plain_database)."""

from __future__ import annotations

import json
import random
from operator import itemgetter
from pathlib import Path
from typing import Any

from bottle import Bottle, request, response, template
from suite import (
    EXTRA_FORTUNE,
    HELLO,
    ROWS,
    plain_database,
    plain_models,
    query_count,
)

TEMPLATES = str(Path(__file__).parent / "templates")


def create_app(database_url: str) -> Bottle:
    database = plain_database(database_url)
    World, Fortune = plain_models(database)
    app = Bottle()

    # The first query of a request connects (peewee's autoconnect); Bottle runs after_request
    # hooks for every request, failed ones included, so the connection always goes back.
    @app.hook("after_request")
    def close_database() -> None:
        if not database.is_closed():
            database.close()

    def as_json(world: Any) -> dict[str, int]:
        return {"id": world.id, "randomNumber": world.random_number}

    def json_list(items: list[dict[str, int]]) -> str:
        # Bottle turns only dicts into JSON by itself.
        response.content_type = "application/json"
        return json.dumps(items)

    @app.get("/plaintext")
    def plaintext():
        response.content_type = "text/plain"
        return HELLO

    @app.get("/json")
    def json_():
        return {"message": HELLO}

    @app.get("/users/<user_id:int>")
    def user(user_id):
        return {"id": user_id}

    @app.get("/db")
    def single_query():
        return as_json(World.get_by_id(random.randint(1, ROWS)))

    @app.get("/queries")
    def queries():
        count = query_count(request.query.get("queries"))
        return json_list([as_json(World.get_by_id(random.randint(1, ROWS))) for _ in range(count)])

    @app.get("/fortunes")
    def fortunes():
        rows = [(fortune.id, fortune.message) for fortune in Fortune.select()]
        rows.append((0, EXTRA_FORTUNE))
        rows.sort(key=itemgetter(1))
        return template("fortunes", fortunes=rows, template_lookup=[TEMPLATES])

    @app.get("/updates")
    def updates():
        count = query_count(request.query.get("queries"))
        # Distinct ids, sorted: see app_microback.py.
        ids = sorted(random.sample(range(1, ROWS + 1), count))
        worlds = [World.get_by_id(world_id) for world_id in ids]
        for world in worlds:
            world.random_number = random.randint(1, ROWS)
        World.bulk_update(worlds, fields=[World.random_number])
        return json_list([as_json(world) for world in worlds])

    return app
