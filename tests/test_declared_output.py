"""Declared output (docs/validation.md): a return type holding a model is the response's
schema, so only its fields leave, whatever the handler returns."""

from __future__ import annotations

import dataclasses
import datetime
import uuid

import msgspec
import peewee
import pytest

from microback import App, Response
from microback.testing import TestClient


class UserOut(msgspec.Struct):
    id: int
    email: str
    joined: datetime.date


@dataclasses.dataclass
class NoteOut:
    ref: uuid.UUID
    text: str


class Secretive:
    """What a handler might hold: the declared fields and one that must not leave."""

    def __init__(self) -> None:
        self.id = 7
        self.email = "ada@example.com"
        self.joined = datetime.date(2026, 12, 2)
        self.password_hash = "$2b$12$secret"


REF = uuid.UUID("6f1c0e52-63b5-4a4b-9a7a-27c8f0b0a0a1")


@pytest.fixture
def api(tmp_path) -> TestClient:
    database = peewee.SqliteDatabase(str(tmp_path / "users.db"))

    class User(peewee.Model):
        email = peewee.CharField()
        joined = peewee.DateField()
        password_hash = peewee.CharField()

        class Meta:
            pass

    User._meta.set_database(database)
    database.create_tables([User])
    User.create(email="bob@example.com", joined=datetime.date(2025, 1, 2), password_hash="x$y")

    app = App(secret_key="x" * 32)

    @app.get("/object")
    def from_object(request) -> UserOut:
        return Secretive()  # type: ignore[return-value]

    @app.get("/dict")
    def from_dict(request) -> UserOut:
        return {"id": 1, "email": "e@example.com", "joined": "2026-01-01", "password_hash": "h"}  # type: ignore[return-value]

    @app.get("/row")
    def from_row(request) -> UserOut:
        return User.get()  # type: ignore[no-any-return]

    @app.get("/rows")
    def rows(request) -> list[UserOut]:
        return list(User.select())

    @app.post("/notes")
    def create(request) -> NoteOut:
        return NoteOut(REF, "milk"), 201, {"Location": "/notes/1"}  # type: ignore[return-value]

    @app.get("/raw")
    def raw(request) -> NoteOut:
        return Response.buffered(b"as is", 200, "text/plain")  # type: ignore[return-value]

    @app.get("/broken")
    def broken(request) -> UserOut:
        return {"id": "seven"}  # type: ignore[return-value]

    @app.get("/plain")
    def plain(request) -> dict:
        return {"password_hash": "shown: nothing is declared"}

    client = TestClient(app)
    client.application = app
    return client


def test_only_declared_fields_leave(api):
    expected = {"id": 7, "email": "ada@example.com", "joined": "2026-12-02"}
    assert api.get("/object").json == expected
    assert api.get("/dict").json == {"id": 1, "email": "e@example.com", "joined": "2026-01-01"}


def test_peewee_rows_without_to_dict(api):
    row = {"id": 1, "email": "bob@example.com", "joined": "2025-01-02"}
    assert api.get("/row").json == row
    assert api.get("/rows").json == [row]
    assert "password_hash" not in api.get("/rows").text


def test_status_and_headers_are_kept(api):
    response = api.post("/notes", status=201)
    assert response.headers["Location"] == "/notes/1"
    assert response.content_type == "application/json"
    assert response.json == {"ref": str(REF), "text": "milk"}


def test_a_response_is_passed_through(api):
    assert api.get("/raw").text == "as is"


def test_a_value_that_does_not_fit_is_a_500_naming_the_handler(api, caplog):
    response = api.get("/broken", status=500)
    assert "seven" not in response.text
    assert "does not fit its declared return type" in caplog.text


def test_handlers_without_a_model_return_type_are_unchanged(api):
    handler = api.application.handler_for("plain")
    assert not hasattr(handler, "__wrapped__")
    assert api.get("/plain").json == {"password_hash": "shown: nothing is declared"}
