"""One test per private name of peewee that microback/db/_peewee.py uses (issue 13).

Each pins the behaviour of peewee (and its playhouse pool) that the seam relies on, on plain
peewee objects, so that a peewee upgrade that changes it fails here, by name.
"""

from __future__ import annotations

import threading

import peewee
import pytest
from playhouse import migrations
from playhouse.pool import PooledSqliteDatabase

from microback.db import _peewee
from microback.testing import selected_backends


def _model(database: peewee.Database, **meta) -> type[peewee.Model]:
    class Item(peewee.Model):
        name = peewee.CharField()
        size = peewee.IntegerField(default=0)

        class Meta:
            pass

    Item._meta.set_database(database)
    for key, value in meta.items():
        setattr(Item._meta, key, value)
    return Item


def test_connection_state_is_thread_local():
    # peewee made _ConnectionLocal from threading.local when imported (after the suite's
    # gevent patch, if any): each database's _state is one.
    assert _peewee.connection_state_is_thread_local()
    assert isinstance(peewee.SqliteDatabase(":memory:")._state, threading.local)


def test_rows_of_builds_model_rows_from_a_cursor():
    database = peewee.SqliteDatabase(":memory:")
    item = _model(database)
    database.create_tables([item])
    item.create(name="lamp", size=3)
    query = item.select().where(item.name == "lamp")
    sql, params = query.sql()
    rows = _peewee.rows_of(query, database.execute_sql(sql, params))
    assert [(type(row), row.name, row.size) for row in rows] == [(item, "lamp", 3)]


def test_index_name_and_expressions_of_a_model_index():
    item = _model(peewee.SqliteDatabase(":memory:"), indexes=((("name", "size"), True),))
    (index,) = item._meta.fields_to_index()
    assert _peewee.index_name(index) == "item_name_size"
    assert [e.name for e in _peewee.index_expressions(index)] == ["name", "size"]


def test_pool_wait_timeout_is_the_timeout_given(tmp_path):
    database = PooledSqliteDatabase(str(tmp_path / "a.db"), timeout=3.5)
    assert _peewee.pool_wait_timeout(database) == 3.5


def test_pool_in_use_counts_checked_out_connections(tmp_path):
    database = PooledSqliteDatabase(str(tmp_path / "a.db"), max_connections=4)
    assert _peewee.pool_in_use(database) == 0
    database.connect()
    assert _peewee.pool_in_use(database) == 1
    database.close()
    assert _peewee.pool_in_use(database) == 0
    database.close_all()


def test_postgresql_idle_follows_the_transaction(database_servers):
    if "postgresql" not in selected_backends():
        pytest.skip("PostgreSQL is not selected in MICROBACK_TEST_DATABASES")
    from urllib.parse import urlsplit

    parts = urlsplit(database_servers.url("postgresql"))
    database = peewee.PostgresqlDatabase(
        parts.path.lstrip("/"),
        user=parts.username,
        host=parts.hostname,
        port=parts.port,
        prefer_psycopg3=True,
    )
    conn = database.connection()
    try:
        assert _peewee.postgresql_idle(database, conn)
        with database.atomic():
            database.execute_sql("SELECT 1")
            assert not _peewee.postgresql_idle(database, conn)
        assert _peewee.postgresql_idle(database, conn)
    finally:
        database.close()


def test_open_hook_wraps_every_new_connection(tmp_path):
    opened = []

    class Database(_peewee.OpenHook, peewee.SqliteDatabase):
        def open_connection(self, open_):
            conn = open_()
            opened.append(conn)
            return conn

    database = Database(str(tmp_path / "a.db"))
    database.connect()
    assert opened == [database.connection()]
    database.close()


def test_release_hook_runs_when_a_connection_goes_back(tmp_path):
    released = []

    class Database(_peewee.ReleaseHook, PooledSqliteDatabase):
        def released(self):
            released.append(len(self._connections))

    database = Database(str(tmp_path / "a.db"), max_connections=2)
    database.connect()
    assert released == []
    database.close()
    assert released == [1]  # called after the connection is back in the pool
    database.close_all()


def test_checkout_check_vets_a_pooled_connection_before_reuse(tmp_path):
    vetted = []

    class Database(_peewee.CheckoutCheck, PooledSqliteDatabase):
        def unusable(self, conn):
            vetted.append(conn)
            return True  # so the pool must open another

    database = Database(str(tmp_path / "a.db"), max_connections=2)
    database.connect()
    first = database.connection()
    database.close()
    assert vetted == []
    database.connect()
    assert vetted == [first]
    assert database.connection() is not first
    assert not database.pool_says_unusable(database.connection())
    database.close_all()


def test_atomic_block_is_what_atomic_returns():
    database = peewee.SqliteDatabase(":memory:")
    assert isinstance(database.atomic(), _peewee.AtomicBlock)
    entered = []

    class Block(_peewee.AtomicBlock):
        def __enter__(self):
            entered.append(self.db)
            return super().__enter__()

    with Block(database):
        assert database.in_transaction()
    assert entered == [database]


def test_migration_run_hook_wraps_each_migration(tmp_path):
    (tmp_path / "0001_first.py").write_text("def up(migrator, db):\n    pass\n")
    (tmp_path / "0002_second.py").write_text("def up(migrator, db):\n    pass\n")
    ran = []

    class Runner(_peewee.MigrationRunHook, migrations.Runner):
        def run_one(self, run, name, module, direction):
            run(name, module, direction)
            ran.append((name, direction))

    Runner(peewee.SqliteDatabase(str(tmp_path / "a.db")), str(tmp_path)).up()
    assert ran == [("0001_first", "up"), ("0002_second", "up")]
