"""The six TechEmpower tests and a param route in Falcon, with plain peewee models (see
suite.plain_database).

Falcon has no template engine; the fortunes page is built with ``html.escape`` (in
``suite.fortunes_html``), as for microback and raw WSGI.
"""

from __future__ import annotations

import random
from operator import itemgetter
from typing import Any

import falcon
from suite import (
    EXTRA_FORTUNE,
    HELLO,
    ROWS,
    fortunes_html,
    plain_database,
    plain_models,
    query_count,
)


class CloseDatabase:
    """Give the request's connection (opened by its first query) back to the pool."""

    def __init__(self, database: Any) -> None:
        self.database = database

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        if not self.database.is_closed():
            self.database.close()


class Plaintext:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.data = HELLO.encode()


class Json:
    def on_get(self, req, resp):
        resp.media = {"message": HELLO}


class User:
    def on_get(self, req, resp, user_id):
        resp.media = {"id": user_id}


class SingleQuery:
    def __init__(self, world: Any) -> None:
        self.world = world

    def on_get(self, req, resp):
        world = self.world.get_by_id(random.randint(1, ROWS))
        resp.media = {"id": world.id, "randomNumber": world.random_number}


class Queries:
    def __init__(self, world: Any) -> None:
        self.world = world

    def on_get(self, req, resp):
        count = query_count(req.get_param("queries"))
        worlds = [self.world.get_by_id(random.randint(1, ROWS)) for _ in range(count)]
        resp.media = [{"id": w.id, "randomNumber": w.random_number} for w in worlds]


class Fortunes:
    def __init__(self, fortune: Any) -> None:
        self.fortune = fortune

    def on_get(self, req, resp):
        rows = [(fortune.id, fortune.message) for fortune in self.fortune.select()]
        rows.append((0, EXTRA_FORTUNE))
        rows.sort(key=itemgetter(1))
        resp.content_type = falcon.MEDIA_HTML
        resp.text = fortunes_html(rows)


class Updates:
    def __init__(self, world: Any) -> None:
        self.world = world

    def on_get(self, req, resp):
        count = query_count(req.get_param("queries"))
        # Distinct ids, sorted: see app_microback.py.
        ids = sorted(random.sample(range(1, ROWS + 1), count))
        worlds = [self.world.get_by_id(world_id) for world_id in ids]
        for world in worlds:
            world.random_number = random.randint(1, ROWS)
        self.world.bulk_update(worlds, fields=[self.world.random_number])
        resp.media = [{"id": w.id, "randomNumber": w.random_number} for w in worlds]


def create_app(database_url: str) -> falcon.App:
    database = plain_database(database_url)
    World, Fortune = plain_models(database)
    app = falcon.App(middleware=[CloseDatabase(database)])
    app.add_route("/plaintext", Plaintext())
    app.add_route("/json", Json())
    app.add_route("/users/{user_id:int}", User())
    app.add_route("/db", SingleQuery(World))
    app.add_route("/queries", Queries(World))
    app.add_route("/fortunes", Fortunes(Fortune))
    app.add_route("/updates", Updates(World))
    return app
