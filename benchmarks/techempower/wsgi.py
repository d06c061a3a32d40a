"""The app a server runs: ``BENCH_FRAMEWORK`` picks the implementation, ``DATABASE_URL`` the
database (``sqlite:///path`` or ``postgresql://...``).

    BENCH_FRAMEWORK=flask DATABASE_URL=sqlite:///bench.db microback serve wsgi:app

Every server patches the standard library with gevent before it imports this module, and so
before peewee and psycopg are imported (see docs/serving.md, "gevent patches first").
"""

import os

from suite import create_app

app = create_app(os.environ.get("BENCH_FRAMEWORK", "microback"), os.environ["DATABASE_URL"])
