"""Values a client sends that a column cannot hold: a 4xx naming the field, on every backend."""

from __future__ import annotations

import pytest

from microback.db import InvalidValue, fields
from microback.testing import TestClient

TOO_BIG = 2**63  # one more than the largest signed 64-bit integer, which every backend stores


@pytest.fixture
def api(app, db, models):
    User, Note = models.User, models.Note

    class Counter(db.Model):
        small = fields.IntegerField(default=0)  # 32 bits on PostgreSQL and MariaDB
        big = fields.BigIntegerField(default=0)
        label = fields.CharField(max_length=5, default="")

    db.create_tables()

    @app.get("/notes/<int:note_id>")
    def show_note(request, note_id):
        return Note.get_or_404(Note.id == note_id).to_dict()

    @app.get("/signed/<int(signed=True):note_id>")
    def show_signed(request, note_id):
        return Note.get_or_404(Note.id == note_id).to_dict()

    @app.post("/lookup")
    def lookup(request):
        note_id = request.json_object.get_int("id")
        return Note.get_or_404(Note.id == note_id).to_dict()

    @app.post("/notes")
    def create_note(request):
        return Note.create(**request.json).to_dict(), 201

    @app.post("/counters")
    def create_counter(request):
        return Counter.create(**request.json).to_dict(), 201

    User.create(name="ada")
    return TestClient(app)


@pytest.mark.parametrize(
    "path", [f"/notes/{TOO_BIG}", f"/notes/{10**30}", f"/signed/-{TOO_BIG + 1}"]
)
def test_an_integer_path_value_out_of_range_is_a_404(api, path):
    assert api.get(path, status=404).json["status"] == 404


def test_the_largest_integer_path_value_is_looked_up(api):
    assert api.get(f"/notes/{TOO_BIG - 1}", status=404).json["detail"] == ("Note not found")
    assert api.get(f"/signed/-{TOO_BIG}", status=404).json["detail"] == ("Note not found")


def test_get_int_without_bounds_refuses_what_no_database_stores(api):
    response = api.post_json("/lookup", {"id": TOO_BIG}, status=400)
    message = response.json["detail"]
    assert message.startswith("the 'id' field must be an integer from -9223372036854775808 to ")
    api.post_json("/lookup", {"id": -TOO_BIG - 1}, status=400)
    assert api.post_json("/lookup", {"id": TOO_BIG - 1}, status=404)


@pytest.mark.parametrize(
    ("field", "value"),
    [("small", 2**31), ("small", -(2**31) - 1), ("big", TOO_BIG), ("big", -TOO_BIG - 1)],
)
def test_an_integer_out_of_the_columns_range_is_a_400_naming_the_field(api, db, field, value):
    if field == "small" and db.backend == "sqlite":
        value *= 2**32  # SQLite's integers are all 64 bits
    response = api.post_json("/counters", {field: value}, status=400)
    message = response.json["detail"]
    assert message.startswith(f"the {field!r} field must be an integer from ")


def test_integers_at_the_edge_of_the_columns_range_are_stored(api, db):
    small = 2**31 - 1 if db.backend != "sqlite" else TOO_BIG - 1
    created = api.post_json("/counters", {"small": small, "big": TOO_BIG - 1}, status=201)
    assert (created.json["small"], created.json["big"]) == (small, TOO_BIG - 1)


def test_a_foreign_key_out_of_range_is_a_400_naming_it(api):
    response = api.post_json("/notes", {"owner": TOO_BIG, "text": "x"}, status=400)
    assert response.json["detail"].startswith("the 'owner' field must be an integer")


def test_a_missing_required_field_is_a_400_naming_it(api):
    # MariaDB reports it as error 1364, which PyMySQL raises as an OperationalError.
    response = api.post_json("/notes", {"owner": 1}, status=400)
    assert response.json["detail"] == "the 'text' field is required"


def test_a_value_that_does_not_fit_names_the_field_not_the_database(api, db):
    response = api.post_json("/counters", {"label": "far too long"}, status=400)
    message = response.json["detail"]
    assert "'label' field" in message
    database_name = db.database.database
    assert database_name not in message.replace("label", "")
    response = api.post_json("/counters", {"small": "twelve"}, status=400)
    assert "'small' field" in response.json["detail"]


def test_a_value_the_database_refuses_is_named_by_its_field_never_by_the_database(db, api):
    # Past Model.save's checks (an insert query), the database's own error is translated.
    if db.backend == "sqlite":
        pytest.skip("SQLite stores any value in any column: there is no error to translate")
    (counter,) = [model for model in db.models if model.__name__ == "Counter"]
    with pytest.raises(InvalidValue) as raised:
        counter.insert(small="twelve").execute()
    message = raised.value.description
    assert db.database.database not in message
    if db.backend == "mysql":  # MariaDB names `database`.`table`.`column`; PostgreSQL nothing
        assert message == "a value does not fit the 'small' field: too long, or of the wrong kind"


def test_an_sql_expression_is_saved_as_peewee_saves_it(api, db):
    (counter,) = [model for model in db.models if model.__name__ == "Counter"]
    row = counter.create(small=1)
    row.small = counter.small + 41
    row.save()
    assert counter.get_by_id(row.id).small == 42
