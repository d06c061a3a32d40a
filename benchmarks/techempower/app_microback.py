"""The six TechEmpower tests and a param route in microback, with ``microback.db`` models.

The fortunes page is rendered from ``templates/fortunes.html`` with ``microback.render``
(Jinja2), as Flask renders its own; ``by_hand=True`` builds it with ``suite.fortunes_html``
instead, which ``inprocess.py`` measures beside it to show what the template costs.
"""

from __future__ import annotations

import random
from operator import itemgetter
from typing import Any

from suite import (
    EXTRA_FORTUNE,
    HELLO,
    POOL_SIZE,
    POOL_TIMEOUT,
    ROWS,
    fortunes_html,
    query_count,
)

from microback import App, Response, Templates, render
from microback.db import Database, fields


def create_app(database_url: str, *, by_hand: bool = False) -> App:
    app = App()
    db = Database(app, database_url, max_connections=POOL_SIZE, pool_timeout=POOL_TIMEOUT)
    Templates(app)  # templates/ beside this file

    def templated(request: Any, rows: list[tuple[int, str]]) -> Any:
        return render(request, "fortunes.html", fortunes=rows)

    def built_by_hand(request: Any, rows: list[tuple[int, str]]) -> Any:
        return fortunes_html(rows)  # a str is text/html; charset=utf-8

    page = built_by_hand if by_hand else templated

    class World(db.Model):
        random_number = fields.IntegerField(column_name="randomnumber")

        class Meta:
            table_name = "world"

    class Fortune(db.Model):
        message = fields.CharField(max_length=2048)

        class Meta:
            table_name = "fortune"

    def as_json(world: Any) -> dict[str, int]:
        return {"id": world.id, "randomNumber": world.random_number}

    @app.get("/plaintext")
    def plaintext(request):
        return Response(HELLO, content_type="text/plain")

    @app.get("/json")
    def json(request):
        return {"message": HELLO}

    @app.get("/users/<int:user_id>")
    def user(request, user_id):
        return {"id": user_id}

    @app.get("/db")
    def single_query(request):
        return as_json(World.get_by_id(random.randint(1, ROWS)))

    @app.get("/queries")
    def queries(request):
        count = query_count(request.args.get("queries"))
        return [as_json(World.get_by_id(random.randint(1, ROWS))) for _ in range(count)]

    @app.get("/fortunes")
    def fortunes(request):
        rows = [(fortune.id, fortune.message) for fortune in Fortune.select()]
        rows.append((0, EXTRA_FORTUNE))
        rows.sort(key=itemgetter(1))
        return page(request, rows)

    @app.get("/updates")
    def updates(request):
        count = query_count(request.args.get("queries"))
        # Distinct ids, so one request's updates do not overwrite each other; sorted, so
        # concurrent requests lock rows in the same order (no deadlocks on PostgreSQL).
        ids = sorted(random.sample(range(1, ROWS + 1), count))
        worlds = [World.get_by_id(world_id) for world_id in ids]
        for world in worlds:
            world.random_number = random.randint(1, ROWS)
        World.bulk_update(worlds, fields=[World.random_number])
        return [as_json(world) for world in worlds]

    return app
