"""A connection per request, transactions, and the database failing: on every backend."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from microback import abort
from microback.db import fields, non_atomic
from microback.testing import TestClient


def _note_routes(app, models):
    Note, User = models.Note, models.User

    @app.post("/notes/twice-then-raise")
    def twice_then_raise(request):
        owner = User.create(name="ada")
        Note.create(owner=owner, text="first")
        Note.create(owner=owner, text="second")
        raise RuntimeError("the handler failed after two writes")

    @app.post("/notes/twice-then-abort")
    def twice_then_abort(request):
        owner = User.create(name="ada")
        Note.create(owner=owner, text="first")
        abort(409, "changed my mind")

    @app.post("/notes/twice-then-503")
    def twice_then_503(request):
        owner = User.create(name="ada")
        Note.create(owner=owner, text="first")
        return {"error": "upstream down"}, 503

    @app.post("/notes")
    def create(request):
        owner = User.create(name=request.json["owner"])
        return Note.create(owner=owner, text=request.json["text"]).to_dict(), 201

    @app.get("/counts")
    def counts(request):
        return {"users": User.select().count(), "notes": Note.select().count()}


def test_unsafe_requests_leave_nothing_behind_by_default_when_the_handler_fails(app, db, models):
    assert db.options.atomic_requests  # on unless turned off
    _note_routes(app, models)
    client = TestClient(app)

    client.post("/notes/twice-then-raise", status=500)
    client.post("/notes/twice-then-abort", status=409)
    client.post("/notes/twice-then-503", status=503)
    assert client.get("/counts").json == {"users": 0, "notes": 0}

    client.post_json("/notes", {"owner": "ada", "text": "kept"}, status=201)
    assert client.get("/counts").json == {"users": 1, "notes": 1}


def test_without_atomic_requests_each_statement_commits_on_its_own(app, make_db):
    db = make_db(atomic_requests=False)

    class User(db.Model):
        name = fields.CharField(max_length=80, unique=True)

    class Note(db.Model):
        owner = fields.ForeignKeyField(User)
        text = fields.TextField()

    db.create_tables()
    _note_routes(app, type("M", (), {"User": User, "Note": Note}))
    client = TestClient(app)
    client.post("/notes/twice-then-raise", status=500)
    assert client.get("/counts").json == {"users": 1, "notes": 2}


def test_a_non_atomic_route_commits_each_statement_while_others_stay_atomic(app, db, models):
    User, Note = models.User, models.Note

    @app.post("/streaming")
    @non_atomic
    def streaming(request):
        owner = User.create(name="ada")
        Note.create(owner=owner, text="kept")
        raise RuntimeError("failed after two writes, outside a transaction")

    _note_routes(app, models)
    client = TestClient(app)
    client.post("/notes/twice-then-raise", status=500)
    assert client.get("/counts").json == {"users": 0, "notes": 0}
    client.post("/streaming", status=500)
    assert client.get("/counts").json == {"users": 1, "notes": 1}


def test_the_request_transaction_begins_at_the_first_write(app, db, models):
    # Reads and slow work before the first write hold no transaction (and on SQLite no lock);
    # a db.atomic() block inside the request is a savepoint of the request's transaction.
    User, Note = models.User, models.Note
    seen = {}

    @app.post("/notes/read-then-write")
    def read_then_write(request):
        seen["before"] = db.database.in_transaction()
        User.select().count()
        seen["after read"] = db.database.in_transaction()
        with db.atomic():
            owner = User.create(name="ada")
        seen["after write"] = db.database.in_transaction()
        Note.create(owner=owner, text="lost with the request")
        abort(409, "changed my mind")

    TestClient(app).post("/notes/read-then-write", status=409)
    assert seen == {"before": False, "after read": False, "after write": True}
    assert User.select().count() == 0 and Note.select().count() == 0


def test_atomic_is_a_context_manager_and_a_decorator(app, db, models):
    User = models.User

    @db.atomic()
    def create_two_then_fail():
        User.create(name="a")
        User.create(name="b")
        raise ValueError("undo both")

    @app.post("/decorated")
    def decorated(request):
        with contextlib.suppress(ValueError):
            create_two_then_fail()
        return {"users": User.select().count()}

    @app.post("/block")
    def block(request):
        with db.atomic():
            User.create(name="c")
        with contextlib.suppress(ValueError), db.atomic():
            User.create(name="d")
            raise ValueError("undo d")
        return {"users": [u.name for u in User.select()]}

    client = TestClient(app)
    assert client.post("/decorated").json == {"users": 0}
    assert client.post("/block").json == {"users": ["c"]}


def test_a_handler_that_raised_still_returns_its_connection(app, make_db):
    db = make_db(max_connections=1, pool_timeout=0.2)

    @app.get("/fails")
    def fails(request):
        db.database.execute_sql("SELECT 1")
        raise RuntimeError("boom")

    @app.get("/works")
    def works(request):
        return {"one": db.database.execute_sql("SELECT 1").fetchone()[0]}

    client = TestClient(app)
    for _ in range(3):
        client.get("/fails", status=500)
    # With a pool of one, a leaked connection would make this a 503.
    assert client.get("/works").json == {"one": 1}


def test_a_request_that_does_not_query_takes_no_connection(app, make_db):
    db = make_db(max_connections=1, pool_timeout=0.2)
    seen = {}

    @app.get("/static")
    def static(request):
        seen["connected"] = not db.database.is_closed()
        return {"ok": True}

    holder_ready, release = threading.Event(), threading.Event()

    def hold_the_only_connection():
        db.database.execute_sql("SELECT 1")
        holder_ready.set()
        release.wait(10)
        db.database.close()

    holder = threading.Thread(target=hold_the_only_connection)
    holder.start()
    try:
        holder_ready.wait(10)
        assert TestClient(app).get("/static").json == {"ok": True}
    finally:
        release.set()
        holder.join()
    assert seen == {"connected": False}


def test_exhausted_pool_answers_503_with_retry_after(app, make_db):
    db = make_db(max_connections=1, pool_timeout=0.2)

    @app.get("/query")
    def query(request):
        return {"one": db.database.execute_sql("SELECT 1").fetchone()[0]}

    holder_ready, release = threading.Event(), threading.Event()

    def hold_the_only_connection():
        db.database.execute_sql("SELECT 1")
        holder_ready.set()
        release.wait(10)
        db.database.close()

    holder = threading.Thread(target=hold_the_only_connection)
    holder.start()
    client = TestClient(app)
    try:
        holder_ready.wait(10)
        response = client.get("/query", status=503)
    finally:
        release.set()
        holder.join()
    assert response.headers["Retry-After"] == "1"
    assert response.json["detail"] == (
        "the server is busy: every database connection stayed in use; try again"
    )
    assert client.get("/query").json == {"one": 1}


def test_database_going_away_is_a_503_and_the_app_recovers(app, make_db, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("an SQLite file cannot go away like a server")
    db = make_db()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nothing_listens = sock.getsockname()[1]

    @app.get("/query")
    def query(request):
        return {"one": db.database.execute_sql("SELECT 1").fetchone()[0]}

    @app.get("/health")
    def health(request):
        return {"ok": True}

    client = TestClient(app)
    assert client.get("/query").json == {"one": 1}
    # The server stops: point at a port where nothing listens (the shared server stays up).
    scheme, rest = database_url.split("://", 1)
    userinfo, _, path = rest.partition("@")
    db.configure(f"{scheme}://{userinfo}@127.0.0.1:{nothing_listens}/{path.split('/', 1)[1]}")
    response = client.get("/query", status=503)
    assert response.headers["Retry-After"] == "1"
    assert client.get("/health").json == {"ok": True}  # other routes go on
    db.configure(database_url)  # the server is back
    assert client.get("/query").json == {"one": 1}


KILL_OWN_CONNECTION = {
    "postgresql": "SELECT pg_terminate_backend(pg_backend_pid())",
    "mysql": "KILL CONNECTION CONNECTION_ID()",
}


def test_connection_killed_mid_request_is_a_503_and_the_next_request_succeeds(app, make_db):
    db = make_db(max_connections=2)
    if db.backend == "sqlite":
        pytest.skip("SQLite has no server connection to lose")

    @app.get("/killed")
    def killed(request):
        db.database.execute_sql("SELECT 1")
        db.database.execute_sql(KILL_OWN_CONNECTION[db.backend])
        return {"survived": True}

    @app.get("/query")
    def query(request):
        return {"one": db.database.execute_sql("SELECT 1").fetchone()[0]}

    client = TestClient(app)
    response = client.get("/killed", status=503)
    assert response.json["detail"] == ("the database is unavailable or busy; try again shortly")
    assert client.get("/query").json == {"one": 1}
    assert client.get("/query").json == {"one": 1}


def test_pooled_connections_killed_while_idle_are_never_handed_out(app, make_db, database_servers):
    db = make_db(max_connections=3)
    if db.backend == "sqlite":
        pytest.skip("SQLite has no server connection to lose")

    @app.get("/query")
    def query(request):
        return {"one": db.database.execute_sql("SELECT 1").fetchone()[0]}

    client = TestClient(app)
    assert client.get("/query").json == {"one": 1}  # one connection now idle in the pool
    admin = database_servers.admin(db.backend)  # the server restarts: every session dies
    if db.backend == "postgresql":
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    else:
        cursor = admin.cursor()
        cursor.execute(
            "SELECT id FROM information_schema.processlist WHERE db = DATABASE() "
            "AND id <> CONNECTION_ID()"
        )
        for (thread_id,) in cursor.fetchall():
            cursor.execute(f"KILL CONNECTION {int(thread_id)}")
    _wait_until_sessions_end(admin, db.backend)
    assert client.get("/query").json == {"one": 1}


def _wait_until_sessions_end(admin, backend):
    # pg_terminate_backend only signals the session, and KILL returns before the socket is
    # closed: a server restart is over once the sessions are gone.
    if backend == "postgresql":
        sql = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    else:
        sql = (
            "SELECT count(*) FROM information_schema.processlist "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        cursor = admin.cursor()
        cursor.execute(sql)
        if cursor.fetchone()[0] == 0:
            return
        time.sleep(0.02)
    raise AssertionError("the killed sessions did not end within 10 s")


def test_values_the_database_cannot_store_are_a_400(app, db, models, caplog):
    Note, User = models.Note, models.User

    @app.post("/users")
    def create_user(request):
        return User.create(name=request.json["name"]).to_dict(), 201

    client = TestClient(app)
    owner = User.create(name="ada")
    # Model.save checks max_length, which SQLite alone would not enforce.
    too_long = client.post_json("/users", {"name": "x" * 81}, status=400)
    message = too_long.json["detail"]
    assert message == "the 'name' field must be at most 80 characters long"
    if db.backend == "postgresql":  # PostgreSQL text cannot hold NUL

        @app.post("/notes")
        def create_note(request):
            return Note.create(owner=owner, text=request.json["text"]).to_dict(), 201

        nul = client.post_json("/notes", {"text": "a\u0000b"}, status=400)
        assert nul.json["detail"].startswith("a value does not fit")
        assert Note.select().count() == 0


def test_a_handler_reading_the_stream_itself_still_gets_the_whole_body(app, db, models):
    # The body is read before the transaction begins, unless the handler reads the stream
    # itself: then what it has not read yet must stay there for it.
    @app.post("/stream")
    def stream(request):
        first = request.stream.read(4)
        models.User.create(name="ada")
        return {"first": first.decode(), "rest": request.stream.read().decode()}, 201

    answer = TestClient(app).post("/stream", b"0123456789", status=201)
    assert answer.json == {"first": "0123", "rest": "456789"}


def test_before_commit_writes_in_the_request_transaction_or_rolls_it_back(app, db, models):
    from werkzeug.exceptions import Conflict

    User = models.User
    outcome = {"refuse": False}

    def record(request):
        def callback(response):
            User.create(name=f"answered {response.status_code} {User.select().count()}")
            if outcome["refuse"]:
                raise Conflict("refused before the commit")

        db.before_commit(request, callback)

    @app.post("/users")
    def create(request):
        record(request)
        User.create(name=f"ada {User.select().count()}")
        return {}, 201

    @app.post("/reads-only")
    def reads_only(request):
        record(request)  # its write is then the first of the request
        return {"count": User.select().count()}

    @app.post("/fails")
    def fails(request):
        record(request)
        User.create(name="bob")
        return {}, 503

    client = TestClient(app)
    client.post("/users", status=201)
    client.post("/reads-only", status=200)
    client.post("/fails", status=503)
    assert sorted(u.name for u in User.select()) == ["ada 0", "answered 200 2", "answered 201 1"]
    outcome["refuse"] = True
    refused = client.post("/users", status=409)
    assert refused.json["detail"] == "refused before the commit"
    assert User.select().count() == 3
