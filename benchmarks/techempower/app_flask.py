"""The six TechEmpower tests and a param route in Flask, with plain peewee models (see
suite.plain_database)."""

from __future__ import annotations

import random
from operator import itemgetter
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template, request
from suite import (
    EXTRA_FORTUNE,
    HELLO,
    ROWS,
    plain_database,
    plain_models,
    query_count,
)


def create_app(database_url: str) -> Flask:
    database = plain_database(database_url)
    World, Fortune = plain_models(database)
    app = Flask(__name__, template_folder=Path(__file__).parent / "templates")

    # The first query of a request connects (peewee's autoconnect); give the connection back
    # to the pool when the request ends, whatever happened.
    @app.teardown_request
    def close_database(error: BaseException | None) -> None:
        if not database.is_closed():
            database.close()

    def as_json(world: Any) -> dict[str, int]:
        return {"id": world.id, "randomNumber": world.random_number}

    @app.get("/plaintext")
    def plaintext():
        return HELLO, {"Content-Type": "text/plain"}

    @app.get("/json")
    def json():
        return {"message": HELLO}

    @app.get("/users/<int:user_id>")
    def user(user_id):
        return {"id": user_id}

    @app.get("/db")
    def single_query():
        return as_json(World.get_by_id(random.randint(1, ROWS)))

    @app.get("/queries")
    def queries():
        count = query_count(request.args.get("queries"))
        return jsonify([as_json(World.get_by_id(random.randint(1, ROWS))) for _ in range(count)])

    @app.get("/fortunes")
    def fortunes():
        rows = [(fortune.id, fortune.message) for fortune in Fortune.select()]
        rows.append((0, EXTRA_FORTUNE))
        rows.sort(key=itemgetter(1))
        return render_template("fortunes.html", fortunes=rows)

    @app.get("/updates")
    def updates():
        count = query_count(request.args.get("queries"))
        # Distinct ids, sorted: see app_microback.py.
        ids = sorted(random.sample(range(1, ROWS + 1), count))
        worlds = [World.get_by_id(world_id) for world_id in ids]
        for world in worlds:
            world.random_number = random.randint(1, ROWS)
        World.bulk_update(worlds, fields=[World.random_number])
        return jsonify([as_json(world) for world in worlds])

    return app
