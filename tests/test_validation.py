"""Declared input (docs/validation.md): a typed body parameter is decoded and validated by
msgspec, and a body that does not validate is a 422 problem document listing every field."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from typing import Annotated, Literal, TypedDict

import msgspec
import pytest

from microback import App, Body, Query
from microback.testing import TestClient

PROBLEM = "application/problem+json"


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Item(msgspec.Struct, forbid_unknown_fields=True):
    sku: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}-\d+$")]
    qty: Annotated[int, msgspec.Meta(ge=1, le=100)]


class Order(msgspec.Struct):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    items: list[Item]
    color: Color
    kind: Literal["retail", "wholesale"]
    due: datetime.datetime
    ref: uuid.UUID
    price: decimal.Decimal
    note: str | None = None


@dataclasses.dataclass
class Point:
    x: int
    y: int
    label: str = "origin"


class Person(TypedDict):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    age: int


@dataclasses.dataclass
class Line:
    start: Point
    end: Point


@dataclasses.dataclass
class Filters:
    q: Annotated[str, msgspec.Meta(min_length=2)]
    page: Annotated[int, msgspec.Meta(ge=1)] = 1
    tags: list[Literal["new", "old"]] = dataclasses.field(default_factory=list)
    exact: bool = False


class Opaque:
    """A class msgspec knows nothing of."""


VALID_ORDER = {
    "title": "lunch",
    "items": [{"sku": "ABC-1", "qty": 2}],
    "color": "red",
    "kind": "retail",
    "due": "2026-12-02T10:00:00Z",
    "ref": "6f1c0e52-63b5-4a4b-9a7a-27c8f0b0a0a1",
    "price": "12.50",
}


@pytest.fixture
def api() -> TestClient:
    app = App(secret_key="x" * 32)

    @app.post("/orders")
    def create_order(request, order: Order):
        return {
            "title": order.title,
            "qty": [item.qty for item in order.items],
            "color": order.color.value,
            "due": order.due.isoformat(),
            "ref": str(order.ref),
            "price": str(order.price + 1),
            "note": order.note,
        }

    @app.post("/points")
    def create_point(request, point: Point):
        return {"x": point.x, "y": point.y, "label": point.label, "type": type(point).__name__}

    @app.post("/people")
    def create_person(request, person: Person):
        return dict(person)

    @app.post("/lines")
    def create_line(request, line: Line):
        return {"length": abs(line.end.x - line.start.x)}

    @app.post("/loose")
    def loose(request, point: Annotated[Point, Body(forbid_unknown_fields=False)]):
        return {"x": point.x}

    @app.post("/numbers")
    def numbers(request, values: Annotated[list[Annotated[int, msgspec.Meta(ge=0)]], Body()]):
        return {"sum": sum(values)}

    @app.post("/notes/<int:note_id>")
    def annotate(request, note_id: int, point: Point):
        return {"note": note_id, "x": point.x}

    @app.get("/search")
    def search(request, filters: Annotated[Filters, Query()]):
        return {"q": filters.q, "page": filters.page, "tags": filters.tags, "exact": filters.exact}

    @app.post("/search/<int:shelf>")
    def search_and_add(request, shelf: int, filters: Annotated[Filters, Query], point: Point):
        return {"shelf": shelf, "q": filters.q, "x": point.x}

    @app.post("/plain")
    def plain(request):
        return {"got": request.json}

    client = TestClient(app)
    client.application = app
    return client


def _problem(response, status):
    assert response.status_int == status, response.text
    assert response.content_type == PROBLEM
    document = response.json
    assert document["status"] == status
    assert document["type"] == "about:blank"
    assert document["title"] and document["detail"]
    return document


def _errors(document):
    return {tuple(error["path"]): error["code"] for error in document["errors"]}


def test_a_valid_struct_body_reaches_the_handler_typed(api):
    response = api.post_json("/orders", VALID_ORDER)
    assert response.json == {
        "title": "lunch",
        "qty": [2],
        "color": "red",
        "due": "2026-12-02T10:00:00+00:00",
        "ref": "6f1c0e52-63b5-4a4b-9a7a-27c8f0b0a0a1",
        "price": "13.50",
        "note": None,
    }


def test_every_invalid_field_is_listed_at_once(api):
    body = dict(
        VALID_ORDER,
        title="",
        items=[{"sku": "ABC-1", "qty": 2}, {"sku": "nope", "qty": 0}, {"sku": "XYZ-9"}],
        color="green",
        kind="gift",
        due="tomorrow",
        ref="not-a-uuid",
        price="a lot",
    )
    document = _problem(api.post_json("/orders", body, status=422), 422)
    assert _errors(document) == {
        ("title",): "length",
        ("items", 1, "sku"): "pattern",
        ("items", 1, "qty"): "range",
        ("items", 2, "qty"): "missing",
        ("color",): "enum",
        ("kind",): "enum",
        ("due",): "format",
        ("ref",): "format",
        ("price",): "format",
    }
    assert all(error["location"] == "body" for error in document["errors"])
    messages = {tuple(e["path"]): e["message"] for e in document["errors"]}
    assert messages[("title",)] == "Expected `str` of length >= 1"
    assert messages[("items", 2, "qty")] == "this field is required"
    assert "9 invalid fields" in document["detail"]


def test_missing_fields_and_wrong_types_at_each_level(api):
    document = _problem(api.post_json("/orders", {"items": "many"}, status=422), 422)
    errors = _errors(document)
    assert errors[("items",)] == "type"
    for name in ("title", "color", "kind", "due", "ref", "price"):
        assert errors[(name,)] == "missing"
    assert ("note",) not in errors  # optional
    assert _problem(api.post_json("/orders", [1, 2], status=422), 422)["errors"] == [
        {
            "location": "body",
            "path": [],
            "message": "Expected `object`, got `array`",
            "code": "type",
        }
    ]
    items = [{"sku": "ABC-1", "qty": "two"}, 5]
    errors = _errors(api.post_json("/orders", dict(VALID_ORDER, items=items), status=422).json)
    assert errors == {("items", 0, "qty"): "type", ("items", 1): "type"}


def test_dataclass_bodies_with_defaults_and_nesting(api):
    assert api.post_json("/points", {"x": 1, "y": 2}).json == {
        "x": 1,
        "y": 2,
        "label": "origin",
        "type": "Point",
    }
    errors = _errors(api.post_json("/points", {"x": "1", "label": 3}, status=422).json)
    assert errors == {("x",): "type", ("y",): "missing", ("label",): "type"}
    body = {"start": {"x": 1, "y": 1}, "end": {"x": 4}}
    assert _errors(api.post_json("/lines", body, status=422).json) == {("end", "y"): "missing"}
    body["end"]["y"] = 0
    assert api.post_json("/lines", body).json == {"length": 3}


def test_typeddict_bodies(api):
    assert api.post_json("/people", {"name": "Ada", "age": 36}).json == {"name": "Ada", "age": 36}
    errors = _errors(api.post_json("/people", {"name": "", "age": 1.5}, status=422).json)
    assert errors == {("name",): "length", ("age",): "type"}


def test_unknown_fields_are_refused_by_default_at_every_level(api):
    errors = _errors(api.post_json("/points", {"x": 1, "y": 2, "z": 3}, status=422).json)
    assert errors == {("z",): "unknown_field"}
    body = {"start": {"x": 1, "y": 1, "w": 0}, "end": {"x": 1, "y": 1}}
    assert _errors(api.post_json("/lines", body, status=422).json) == {
        ("start", "w"): "unknown_field"
    }
    errors = _errors(
        api.post_json("/people", {"name": "A", "age": 1, "admin": True}, status=422).json
    )
    assert errors == {("admin",): "unknown_field"}
    order = dict(VALID_ORDER, extra=1, items=[{"sku": "ABC-1", "qty": 1, "free": True}])
    errors = _errors(api.post_json("/orders", order, status=422).json)
    assert errors == {("extra",): "unknown_field", ("items", 0, "free"): "unknown_field"}


def test_unknown_fields_can_be_accepted(api):
    assert api.post_json("/loose", {"x": 1, "y": 2, "z": 3}).json == {"x": 1}


def test_a_list_body_with_constrained_items(api):
    assert api.post_json("/numbers", [1, 2, 3]).json == {"sum": 6}
    errors = _errors(api.post_json("/numbers", [1, -1, "x", -5], status=422).json)
    assert errors == {(1,): "range", (2,): "type", (3,): "range"}


def test_url_values_and_a_body_together(api):
    assert api.post_json("/notes/7", {"x": 1, "y": 2}).json == {"note": 7, "x": 1}


def test_handlers_without_annotations_are_untouched(api):
    handler = api.application.handler_for("plain")
    assert handler.__name__ == "plain" and not hasattr(handler, "__wrapped__")
    assert api.post_json("/plain", {"a": 1}).json == {"got": {"a": 1}}
    # the same problem document as every other error
    response = api.post("/plain", "{", content_type="application/json", status=400)
    assert response.content_type == "application/problem+json"
    assert response.json["detail"].startswith("malformed JSON")


def test_malformed_json_is_a_400_problem(api):
    for body in (b"{", b'{"x": 1,}', b"NaN", b'{"x": Infinity}', b"   "):
        response = api.post("/points", body, content_type="application/json", status=400)
        assert "JSON" in _problem(response, 400)["detail"]


def test_a_body_that_is_not_json_is_a_415_problem(api):
    response = api.post("/points", "x=1", content_type="text/plain", status=415)
    assert "application/json" in _problem(response, 415)["detail"]


HOSTILE = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"start":' * 50_000 + b"1" + b"}" * 50_000,
    b"[" + b"1," * 200_000 + b'"x"]',
    b'{"x": 1, "x": "two", "y": 2}',
    b'{"x": 1, "y": "\xff\xfe"}',
    b'\xff\xfe{\x00"\x00x\x00"\x00',
    b'{"x": 123456789012345678901234567890123456789, "y": 1}',
    b'{"x": 1e999, "y": 1}',
    b'{"x": NaN, "y": 1}',
    b'{"x": -Infinity, "y": 1}',
    b'{"x": 1, "y": 2, "label": "\\ud800"}',
    b'{"x": 1, "y": 2, "label": "\\udc00\\ud800"}',
    b'{"\\ud800": 1, "x": 1, "y": 2}',
    b'{"x": {"x": {"x": []}}, "y": [[[{}]]]}',
    b"\x00",
    b'"' + b"a" * 100_000 + b'"',
    b"{" + b",".join(b'"k%d": %d' % (i, i) for i in range(20_000)) + b"}",
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("path", ["/points", "/lines", "/orders", "/numbers"])
def test_hostile_bodies_are_a_4xx_problem_never_a_500(api, body, path):
    response = api.post(path, body, content_type="application/json", expect_errors=True)
    assert 400 <= response.status_int < 500, (response.status, response.text[:300])
    document = _problem(response, response.status_int)
    assert "Traceback" not in response.text
    assert len(document.get("errors", [])) <= 100


def test_integers_past_64_bits_are_refused_where_they_are(api):
    body = {"x": 2**63, "y": -(2**63) - 1}
    errors = _errors(api.post_json("/points", body, status=422).json)
    assert errors == {("x",): "range", ("y",): "range"}
    assert api.post_json("/points", {"x": 2**63 - 1, "y": -(2**63)}).status_int == 200
    assert api.post_json("/points", {"x": 1, "y": 2, "label": "9" * 40}).status_int == 200


def test_a_huge_array_of_wrong_items_lists_a_bounded_number_of_errors(api):
    response = api.post_json("/numbers", [-1] * 10_000, status=422)
    document = _problem(response, 422)
    assert len(document["errors"]) == 100
    assert "the first 100 are listed" in document["detail"]


def test_a_type_msgspec_cannot_decode_is_an_error_at_registration():
    app = App(secret_key="x" * 32)
    with pytest.raises(TypeError, match="msgspec cannot decode"):

        @app.post("/x")
        def take(request, thing: Annotated[Opaque, Body()]):
            return {}


def test_two_bodies_are_an_error_at_registration():
    app = App(secret_key="x" * 32)
    with pytest.raises(TypeError, match="several bodies"):

        @app.post("/x")
        def take(request, a: Point, b: Point):
            return {}


def test_a_problem_is_json_even_for_a_browser(api):
    response = api.post(
        "/points",
        json.dumps({"x": 1}),
        content_type="application/json",
        headers={"Accept": "text/html"},
        status=422,
    )
    assert _errors(_problem(response, 422)) == {("y",): "missing"}


def test_a_declared_query_is_converted_from_text(api):
    assert api.get("/search?q=milk").json == {"q": "milk", "page": 1, "tags": [], "exact": False}
    response = api.get("/search?q=milk&page=3&tags=new&tags=old&exact=true")
    assert response.json == {"q": "milk", "page": 3, "tags": ["new", "old"], "exact": True}


def test_every_invalid_query_parameter_is_listed(api):
    response = api.get("/search?q=m&page=zero&tags=new&tags=blue&exact=maybe&sort=x", status=422)
    document = _problem(response, 422)
    assert _errors(document) == {
        ("q",): "length",
        ("page",): "type",
        ("tags", 1): "enum",
        ("exact",): "type",
        ("sort",): "unknown_field",
    }
    assert {error["location"] for error in document["errors"]} == {"query"}
    assert document["detail"] == "the query string does not validate: 5 invalid fields"
    assert _errors(api.get("/search", status=422).json) == {("q",): "missing"}


def test_query_url_values_and_body_together(api):
    response = api.post_json("/search/4?q=milk", {"x": 1, "y": 2})
    assert response.json == {"shelf": 4, "q": "milk", "x": 1}
    response = api.post_json("/search/4?q=m", {"x": 1}, status=422)
    assert _problem(response, 422)["errors"][0]["location"] == "query"


def test_a_query_that_is_not_a_model_is_an_error_at_registration():
    app = App(secret_key="x" * 32)
    expected = r"must be a dataclass, TypedDict, msgspec\.Struct or pydantic model"
    with pytest.raises(TypeError, match=expected):

        @app.get("/x")
        def take(request, page: Annotated[int, Query()]):
            return {}
