"""The single-row read route of benchmarks/db_read.py, in microback and in Flask + peewee.

``BENCH_FRAMEWORK`` (microback or flask) picks the app, ``DATABASE_URL`` the database; both
read one ``world`` row by id and answer it as JSON, with the same pool size.
"""

import os

FRAMEWORK = os.environ.get("BENCH_FRAMEWORK", "microback")
URL = os.environ["DATABASE_URL"]
POOL = 20

if FRAMEWORK == "microback":
    from microback import App
    from microback.db import Database, fields

    app = App(allowed_hosts=["*"])
    db = Database(app, URL, max_connections=POOL)

    class World(db.Model):
        randomnumber = fields.IntegerField()

        class Meta:
            table_name = "world"

    @app.get("/world/<int:world_id>")
    def world(request, world_id):
        return World.get_or_404(World.id == world_id).to_dict()

else:
    import peewee
    from flask import Flask, abort
    from playhouse.db_url import connect

    # A bounded wait for a free connection, as microback has: without it peewee refuses the
    # 21st concurrent request at once (MaxConnectionsExceeded).
    options = {"max_connections": POOL, "timeout": 10} if not URL.startswith("sqlite") else {}
    database = connect(URL.replace("postgresql://", "psycopg3+pool://"), **options)

    class World(peewee.Model):
        randomnumber = peewee.IntegerField()

        class Meta:
            database = database
            table_name = "world"

    app = Flask(__name__)

    @app.before_request
    def open_connection():
        database.connect(reuse_if_open=True)

    @app.teardown_request
    def close_connection(error):
        if not database.is_closed():
            database.close()

    @app.get("/world/<int:world_id>")
    def world(world_id):
        row = World.get_or_none(World.id == world_id)
        if row is None:
            abort(404)
        return {"id": row.id, "randomnumber": row.randomnumber}
