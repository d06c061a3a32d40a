"""Database: URLs, start-up errors, SQLite's settings, and the app integration."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
from urllib.parse import quote

import pytest

from microback import App
from microback.db import Database, DatabaseConfigError, DatabaseUnreachableError, fields
from microback.testing import TestClient, selected_backends, server_url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- configuration errors: one line, naming the problem, password masked ---------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgress://app:s3cret@db.example/notes", "unknown database type 'postgress'"),
        ("notes.db", "not a database URL (no scheme); use sqlite:///path.db"),
        ("postgresql://app:s3cret@db.example:99999/notes", "not a valid URL"),
        ("postgresql://app:s3cret@db.example", "no database name"),
        ("sqlite:///no/such/directory/notes.db", "no directory 'no/such/directory'"),
        ("sqlite:///x.db?max_connections=0", "max_connections must be a whole number"),
        ("sqlite:///x.db?atomic_requests=maybe", "atomic_requests must be true or false"),
    ],
)
def test_unusable_url_is_one_clear_line(tmp_path, monkeypatch, url, expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatabaseConfigError) as caught:
        Database(App(secret_key="k" * 32), url)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert "s3cret" not in message
    assert isinstance(caught.value, ValueError)  # callers may catch either


def test_unreachable_database_at_start_up_names_it_with_the_password_masked():
    url = f"postgresql://app:s3cret@127.0.0.1:{_free_port()}/notes"
    if "postgresql" not in selected_backends():
        url = f"mysql://app:s3cret@127.0.0.1:{_free_port()}/notes"
    with pytest.raises(DatabaseUnreachableError) as caught:
        Database(App(secret_key="k" * 32), url)
    message = str(caught.value)
    assert message.startswith("cannot connect to the database at ")
    assert f"app:***@127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}" in message
    assert "refused" in message.lower()
    assert "s3cret" not in message and "\n" not in message


def test_atomic_requests_cannot_be_switched_once_attached_to_an_app(tmp_path):
    # The app's transaction hooks are added, or not, when the Database is attached.
    app = App(secret_key="k" * 32)
    db = Database(app, f"sqlite:///{tmp_path}/a.db")
    db.configure(f"sqlite:///{tmp_path}/b.db")  # a test moving the app elsewhere: fine

    with pytest.raises(DatabaseConfigError, match="atomic_requests cannot change once"):
        db.configure(f"sqlite:///{tmp_path}/b.db", atomic_requests=False)
    assert db.url == f"sqlite:///{tmp_path}/b.db" and db.options.atomic_requests


def test_display_url_masks_the_password(tmp_path):
    db = Database(url=f"sqlite:///{tmp_path}/a.db")
    assert db.display_url == f"sqlite:///{tmp_path}/a.db"
    db.configure("postgresql://app:p%40ss@db.example:5432/notes?sslmode=require")
    assert db.display_url == "postgresql://app:***@db.example:5432/notes?sslmode=require"
    assert db.backend == "postgresql"


def test_a_missing_driver_says_what_to_install(tmp_path):
    # Run where psycopg and PyMySQL cannot be imported, as on a machine without the extras.
    program = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = sys.modules["psycopg2"] = sys.modules["pymysql"] = None
        sys.modules["MySQLdb"] = None
        from microback.db import Database, DatabaseConfigError
        for url in ("postgresql://u:s3cret@h/n", "mysql://u:s3cret@h/n"):
            try:
                Database(url=url)
            except DatabaseConfigError as exc:
                print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [
        "database URL 'postgresql://u:***@h/n': PostgreSQL needs the psycopg 3 driver, which is "
        "not installed; pip install 'microback[postgresql]'",
        "database URL 'mysql://u:***@h/n': MySQL and MariaDB need the PyMySQL driver, which is "
        "not installed; pip install 'microback[mysql]'",
    ]


def test_peewee_imported_before_gevent_patching_is_refused():
    program = textwrap.dedent(
        """
        import peewee
        from gevent import monkey
        monkey.patch_all()
        from microback.db import Database, DatabaseConfigError
        try:
            Database(url="sqlite:///:memory:")
        except DatabaseConfigError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("peewee and psycopg were imported before gevent patched")
    assert "microback serve does this for you" in result.stdout


# --- where the URL comes from ----------------------------------------------------------------


def test_database_url_in_the_environment_overrides_the_code(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/from-env.db")
    app = App(secret_key="k" * 32)
    db = Database(app, f"sqlite:///{tmp_path}/from-code.db")
    assert app.extensions["db"] is db
    assert (tmp_path / "from-env.db").exists()
    assert not (tmp_path / "from-code.db").exists()


def test_database_without_an_app_is_initialised_later(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    db = Database(url=f"sqlite:///{tmp_path}/later.db")

    class Item(db.Model):
        name = fields.TextField()

    app = App(secret_key="k" * 32)
    db.init_app(app)
    db.create_tables()

    @app.post("/items")
    def create(request):
        return Item.create(name=request.json["name"]).to_dict(), 201

    assert TestClient(app).post_json("/items", {"name": "x"}).json == {"id": 1, "name": "x"}
    assert db.models == [Item]
    db.close_all()


def test_no_url_anywhere_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(DatabaseConfigError, match="no database URL: pass one to Database"):
        Database(App(secret_key="k" * 32))


# --- SQLite, configured for a server ---------------------------------------------------------


def test_sqlite_file_is_created_on_first_use_with_server_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    app = App(secret_key="k" * 32)
    db = Database(url="sqlite:///notes.db")
    assert not (tmp_path / "notes.db").exists()
    db.init_app(app)
    assert (tmp_path / "notes.db").exists()

    @app.get("/pragmas")
    def pragmas(request):
        names = ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        return {n: db.database.execute_sql(f"PRAGMA {n}").fetchone()[0] for n in names}

    assert TestClient(app).get("/pragmas").json == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 0,  # waits for the lock are cooperative (microback.db.sqlite)
        "synchronous": 1,  # NORMAL
    }
    db.close_all()


def test_sqlite_in_memory_keeps_its_data_between_requests(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = App(secret_key="k" * 32)
    db = Database(app, "sqlite:///:memory:")

    class Item(db.Model):
        name = fields.TextField()

    db.create_tables()

    @app.post("/items")
    def create(request):
        return Item.create(name="x").to_dict(), 201

    @app.get("/items")
    def count(request):
        return {"count": Item.select().count()}

    client = TestClient(app)
    client.post("/items")
    client.post("/items")
    assert client.get("/items").json == {"count": 2}


def test_models_are_listed_in_definition_order(db):
    class B(db.Model):
        pass

    class A(db.Model):
        b = fields.ForeignKeyField(B)

    assert db.models == [B, A]
    assert A._meta.table_name == "a"


def test_sqlite_lock_held_longer_than_the_busy_timeout_is_a_503(tmp_path, monkeypatch, app):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    path = tmp_path / "locked.db"
    db = Database(app, f"sqlite:///{path}", busy_timeout=0.1, atomic_requests=True)

    class Item(db.Model):
        name = fields.TextField()

    db.create_tables()

    @app.post("/items")
    def create(request):
        return Item.create(name="x").to_dict(), 201

    client = TestClient(app)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        response = client.post("/items", status=503)
        # Answered while the lock is still held: the wait was bounded by the busy timeout.
        assert other.in_transaction
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert response.headers["Retry-After"] == "1"
    assert "try again" in response.json["detail"]
    assert client.post("/items", status=201).json == {"id": 1, "name": "x"}
    db.close_all()


def test_every_backend_is_selected_in_ci():
    if os.environ.get("CI", "").lower() != "true":
        pytest.skip("only CI must run every backend")
    missing = {"postgresql", "mysql"} - set(selected_backends())
    assert not missing, (
        f"CI=true but MICROBACK_TEST_DATABASES leaves out {sorted(missing)}; .ci/run sets it"
    )


def test_server_urls_can_be_overridden(monkeypatch):
    monkeypatch.setenv("MICROBACK_TEST_POSTGRESQL_URL", "postgresql://me@elsewhere/db")
    assert server_url("postgresql") == "postgresql://me@elsewhere/db"


def test_mysql_password_url_connects_without_tls_or_deprecation_warnings(app, database_servers):
    # Warnings are errors here: PyMySQL warns when given 'passwd', playhouse.db_url's spelling.
    if "mysql" not in selected_backends():
        pytest.skip("MariaDB/MySQL is not selected in MICROBACK_TEST_DATABASES")
    url = database_servers.url("mysql")
    name = url.rsplit("/", 1)[1]
    user, password = f"mb_{secrets.token_hex(4)}", "p@ss:w/rd"
    admin = database_servers.admin("mysql").cursor()
    admin.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
    admin.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'127.0.0.1'")
    db = None
    try:
        db = Database(app, f"mysql://{user}:{quote(password, safe='')}@127.0.0.1:3306/{name}")

        @app.get("/tls")
        def tls(request):
            row = db.database.execute_sql("SHOW SESSION STATUS LIKE 'Ssl_cipher'").fetchone()
            return {"cipher": row[1]}

        assert TestClient(app).get("/tls").json == {"cipher": ""}  # loopback: no TLS
        assert password not in db.display_url
    finally:
        if db is not None:
            db.close_all()
        admin.execute(f"DROP USER '{user}'@'127.0.0.1'")


# --- a SQLite file that cannot take writes: 503 and a clear log line, warned at start-up -------


def _items_app(tmp_path, before=None):
    app = App(secret_key="k" * 32)
    db = Database(app, f"sqlite:///{tmp_path}/items.db")

    class Item(db.Model):
        name = fields.TextField()

    db.create_tables()
    if before is not None:

        @app.before_request
        def prepare(request):
            before(db)

    @app.post("/items")
    def create(request):
        return Item.create(name="x" * int(request.args.get("size", "1"))).to_dict(), 201

    @app.get("/items")
    def count(request):
        return {"count": Item.select().count()}

    return app, db


@pytest.mark.parametrize(
    ("condition", "logged"),
    [
        # What SQLite answers on a read-only file (query_only gives the very same error on any
        # file system and for any user, root included, to whom chmod means nothing).
        (
            "PRAGMA query_only = ON",
            "SQLite cannot write: attempt to write a readonly database; check that the "
            "database file, its directory and its -wal and -shm files are writable",
        ),
        # A full disk: the file may not grow by one more page.
        (
            "PRAGMA max_page_count = 2",
            "SQLite cannot write: database or disk is full; free disk space",
        ),
    ],
    ids=["read-only", "full"],
)
def test_a_sqlite_file_that_cannot_take_writes_answers_503(
    tmp_path, monkeypatch, caplog, condition, logged
):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app, db = _items_app(tmp_path, before=lambda db: db.database.execute_sql(condition))
    client = TestClient(app)
    try:
        refused = client.post("/items?size=20000", status=503)
        assert refused.headers["Retry-After"] == "1"
        message = refused.json["detail"]
        assert message == "the database cannot store changes at the moment; try again later"
        assert client.get("/items").json == {"count": 0}  # reads go on
    finally:
        db.close_all()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and logged in errors[0], caplog.text


def _make_unwritable(path):
    """Make ``path`` unwritable even for root (chattr +i), or by mode; undo with the result."""
    if os.geteuid() != 0:
        path.chmod(0o555 if path.is_dir() else 0o444)
        return lambda: path.chmod(0o755 if path.is_dir() else 0o644)
    chattr = shutil.which("chattr") or "/usr/bin/chattr"
    if subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: nothing is read-only")
    return lambda: subprocess.run([chattr, "-i", str(path)], check=True)


@pytest.mark.parametrize("what", ["file", "directory"])
def test_start_up_warns_when_the_sqlite_file_or_its_directory_is_not_writable(
    tmp_path, monkeypatch, caplog, what
):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    directory = tmp_path / "data"
    directory.mkdir()
    url = f"sqlite:///{directory}/items.db"
    Database(App(secret_key="k" * 32), url).close_all()  # the file exists
    undo = _make_unwritable(directory / "items.db" if what == "file" else directory)
    try:
        caplog.clear()
        Database(App(secret_key="k" * 32), url).close_all()
    except DatabaseUnreachableError as exc:
        # Without its -wal and -shm files SQLite cannot even open a WAL file read-only
        # there: the start-up stops, and says why.
        assert what == "directory" and "of the SQLite database is not writable" in str(exc)
    finally:
        undo()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    expected = {
        "file": f"the SQLite database '{directory}/items.db' is not writable",
        "directory": f"the directory '{directory}' of the SQLite database is not writable",
    }[what]
    assert any(w.startswith(expected) and "answered 503" in w for w in warnings), warnings


def test_start_up_is_silent_for_a_writable_sqlite_file(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    Database(App(secret_key="k" * 32), f"sqlite:///{tmp_path}/items.db").close_all()
    assert not [r for r in caplog.records if r.name == "microback.db"]


def test_transaction_pooling_is_for_postgresql_only(app):
    with pytest.raises(DatabaseConfigError) as refused:
        Database(app, "sqlite:///:memory:?transaction_pooling=true")
    assert str(refused.value) == (
        "database URL 'sqlite:///:memory:?transaction_pooling=true': "
        "option transaction_pooling is for PostgreSQL behind PgBouncer"
    )
