"""db.Model helpers and constraint errors as HTTP answers, on every backend."""

from __future__ import annotations

import logging

import pytest

from microback.db import UniqueViolation, fields
from microback.testing import TestClient


@pytest.fixture
def api(app, models):
    User, Note = models.User, models.Note

    @app.post("/users")
    def create_user(request):
        return User.create(**request.json).to_dict(), 201

    @app.get("/users/<int:user_id>")
    def show_user(request, user_id):
        return User.get_or_404(User.id == user_id).to_dict()

    @app.get("/users/by-name/<path:name>")
    def by_name(request, name):
        return User.get_or_404(name=name).to_dict()

    @app.delete("/users/<int:user_id>")
    def delete_user(request, user_id):
        User.get_or_404(User.id == user_id).delete_instance()
        return "", 204

    @app.post("/notes")
    def create_note(request):
        return Note.create(**request.json).to_dict(), 201

    @app.get("/count")
    def count(request):
        return {"users": User.select().count()}

    return TestClient(app)


def test_get_or_404(api):
    api.post_json("/users", {"name": "ada"}, status=201)
    assert api.get("/users/1").json == {"id": 1, "name": "ada"}
    missing = api.get("/users/99", status=404)
    assert missing.json == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "User not found",
    }


def test_private_fields_are_never_serialized_by_default(api, models):
    created = api.post_json("/users", {"name": "ada", "password_hash": "$2b$12$abc"}, status=201)
    assert created.json == {"id": 1, "name": "ada"}
    assert "$2b$" not in api.get("/users/1").text
    user = models.User.get_by_id(1)
    assert user.to_dict(exclude=["id"]) == {"name": "ada"}
    assert user.to_dict(only=["name", "password_hash"]) == {
        "name": "ada",
        "password_hash": "$2b$12$abc",
    }
    with pytest.raises(ValueError, match="User has no field 'nme'; fields: id, name"):
        user.to_dict(exclude=["nme"])


def test_foreign_keys_serialize_as_the_id_they_hold(api):
    api.post_json("/users", {"name": "ada"}, status=201)
    note = api.post_json("/notes", {"owner": 1, "text": "milk"}, status=201)
    assert note.json == {"id": 1, "owner": 1, "text": "milk"}


def test_sql_metacharacters_in_a_lookup_match_literally(api):
    hostile = 'x\'; DROP TABLE "user"; -- %_\\'
    api.post_json("/users", {"name": "ada"}, status=201)
    assert api.get(f"/users/by-name/{hostile}", status=404).json["status"] == 404
    api.post_json("/users", {"name": hostile}, status=201)
    assert api.get(f"/users/by-name/{hostile}").json == {"id": 2, "name": hostile}
    assert api.get("/count").json == {"users": 2}  # the table is still there, whole


def test_unique_violation_is_a_409_naming_the_field(api, caplog):
    api.post_json("/users", {"name": "ada@example.org"}, status=201)
    with caplog.at_level(logging.WARNING, logger="microback.db"):
        response = api.post_json("/users", {"name": "ada@example.org"}, status=409)
    message = response.json["detail"]
    assert message == "the 'name' field must be unique: another user already has this value"
    assert "ada@example.org" not in response.text  # the raw message may quote the value
    (record,) = [r for r in caplog.records if r.name == "microback.db"]
    assert "POST /users" in record.getMessage()
    assert "duplicate" in record.getMessage().lower() or "unique" in record.getMessage().lower()


def test_not_null_violation_is_a_400_naming_the_field(api):
    api.post_json("/users", {"name": "ada"}, status=201)
    response = api.post_json("/notes", {"owner": 1, "text": None}, status=400)
    assert response.json["detail"] == "the 'text' field is required"


def test_missing_foreign_key_is_a_400_naming_the_field(api):
    response = api.post_json("/notes", {"owner": 42, "text": "orphan"}, status=400)
    assert response.json["detail"] == ("the 'owner' field refers to a row that does not exist")


def test_deleting_a_referenced_row_is_a_409(api):
    api.post_json("/users", {"name": "ada"}, status=201)
    api.post_json("/notes", {"owner": 1, "text": "milk"}, status=201)
    response = api.delete("/users/1", status=409)
    assert response.json["detail"].startswith("this row is still referenced by other rows")
    assert api.get("/users/1").json["name"] == "ada"


def test_constraint_errors_are_still_peewee_errors_for_code_that_catches_them(api, models):
    import peewee

    models.User.create(name="ada")
    with pytest.raises(peewee.IntegrityError) as caught:
        models.User.create(name="ada")
    assert isinstance(caught.value, UniqueViolation)
    assert caught.value.field == "name"
    user, created = models.User.get_or_create(name="ada")  # catches IntegrityError inside
    assert (user.name, created) == ("ada", False)


def test_get_by_id_gives_what_peewee_gives(models):
    User, Note = models.User, models.Note
    ada = User.create(name="ada", password_hash="h1")
    note = Note.create(owner=ada, text="hello")

    for _ in range(2):  # the first call makes the query, the second reuses it
        found = User.get_by_id(ada.id)
        by_peewee = User.select().where(User.id == ada.id).get()
        assert (found.__data__, found._dirty) == (by_peewee.__data__, set())
        assert Note.get_by_id(str(note.id)).owner.name == "ada"  # a str id, as peewee takes

    # The shortcut answered, or this compares peewee with itself.
    assert User.__dict__["_microback_pk_lookup"].sql.startswith("SELECT")
    found.name = "ada lovelace"
    found.save()  # only what changed is written, as for any row peewee loaded
    assert User.get_by_id(ada.id).__data__ == {**by_peewee.__data__, "name": "ada lovelace"}


def test_get_by_id_of_a_missing_row_raises_does_not_exist_with_the_query(models):
    User = models.User
    User.create(name="ada")

    with pytest.raises(User.DoesNotExist) as raised:
        User.get_by_id(404)

    assert isinstance(raised.value, models.User.DoesNotExist)
    assert "User> instance matching query does not exist" in str(raised.value)
    assert "Params: [404, 1, 0]" in str(raised.value)


def test_get_by_id_follows_the_database_when_it_moves(make_db, tmp_path):
    # configure() points the models at another database (and dialect): the query moves too.
    db = make_db()

    class Item(db.Model):
        label = fields.CharField()

    db.create_tables()
    Item.create(label="first database")
    assert Item.get_by_id(1).label == "first database"

    db.configure(f"sqlite:///{tmp_path / 'other.db'}")
    db.create_tables()
    Item.create(label="second database")

    assert Item.get_by_id(1).label == "second database"


def test_get_by_id_with_a_text_primary_key_and_values_that_look_like_sql(make_db):
    db = make_db()

    class Setting(db.Model):
        name = fields.CharField(primary_key=True)
        value = fields.TextField()

    db.create_tables()
    Setting.create(name="theme", value="dark")
    Setting.create(name="x' OR '1'='1", value="literal")

    assert Setting.get_by_id("theme").value == "dark"
    assert Setting.get_by_id("x' OR '1'='1").value == "literal"
    with pytest.raises(Setting.DoesNotExist):
        Setting.get_by_id("' OR ''='")
