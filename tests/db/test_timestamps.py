"""One rule for date-times: UTC, written with its offset, the same on create and on read."""

from __future__ import annotations

import datetime

import pytest

from microback.db import fields
from microback.testing import TestClient

UTC = datetime.timezone.utc
PLUS_TWO = datetime.timezone(datetime.timedelta(hours=2))
GIVEN = datetime.datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=PLUS_TWO)


def _aware_now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def _naive_utc_now() -> datetime.datetime:
    return datetime.datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def api(app, db):
    class Event(db.Model):
        aware = fields.DateTimeField(default=_aware_now)
        naive = fields.DateTimeField(default=_naive_utc_now)
        given = fields.DateTimeField(null=True)

    db.create_tables()

    @app.post("/events")
    def create(request):
        return Event.create(given=GIVEN).to_dict(), 201

    @app.get("/events/<int:event_id>")
    def show(request, event_id):
        return Event.get_or_404(Event.id == event_id).to_dict()

    @app.get("/events/after")
    def after(request):
        # A query with an aware bound finds the row on every database (stored in UTC).
        bound = datetime.datetime(2024, 5, 1, 11, 59, tzinfo=PLUS_TWO)
        return {"ids": [e.id for e in Event.select().where(Event.given > bound)]}

    return TestClient(app), Event


def test_date_times_read_back_as_they_were_answered_on_create(api):
    client, _ = api
    created = client.post("/events", status=201).json
    read = client.get(f"/events/{created['id']}").json
    assert read == created
    for name in ("aware", "naive", "given"):
        assert read[name].endswith("+00:00"), (name, read[name])
        assert datetime.datetime.fromisoformat(read[name]).utcoffset() == datetime.timedelta(0)
    assert read["given"] == "2024-05-01T10:00:00.500000+00:00"
    assert client.get("/events/after").json == {"ids": [created["id"]]}


def test_date_times_are_aware_utc_in_python(api):
    _, Event = api
    event = Event.create(given=GIVEN)
    again = Event.get_by_id(event.id)
    assert again.given == GIVEN
    assert again.given.tzinfo == UTC
    assert again.aware.tzinfo == UTC and again.naive.tzinfo == UTC
    assert abs(again.aware - again.naive) < datetime.timedelta(minutes=5)


def test_a_date_time_field_added_later_is_answered_in_utc_too(api):
    _, Event = api
    Event.create(given=GIVEN).to_dict()  # the model's date-time fields are now known
    Event._meta.add_field("later", fields.DateTimeField(null=True))
    row = Event(given=GIVEN, later=datetime.datetime(2024, 1, 2, 3, 4, 5))
    assert row.to_dict()["later"] == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
