"""pydantic v2 models as declared input (the microback[pydantic] extra): body, query, form
and headers, every invalid field in the same problem document as msgspec types."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated, Literal

import pydantic
import pytest

from microback import App, Form, Header, Query
from microback.testing import TestClient
from microback.validation import input_parameters

PROBLEM = "application/problem+json"


class Item(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    sku: Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Z]{3}-\d+$")]
    qty: Annotated[int, pydantic.Field(ge=1, le=100)]


class Order(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    title: Annotated[str, pydantic.Field(min_length=1)]
    kind: Literal["retail", "wholesale"]
    items: list[Item]
    note: str | None = None


class Filters(pydantic.BaseModel):
    q: Annotated[str, pydantic.Field(min_length=2)]
    page: Annotated[int, pydantic.Field(ge=1)] = 1
    tags: list[str] = []


class Login(pydantic.BaseModel):
    email: str
    remember: bool = False


class Caller(pydantic.BaseModel):
    x_api_version: Annotated[int, pydantic.Field(ge=1)]


@pytest.fixture
def client() -> TestClient:
    app = App(secret_key="x" * 32)

    @app.post("/orders")
    def create(request, order: Order):
        return {"title": order.title, "qty": [item.qty for item in order.items]}

    @app.get("/search")
    def search(request, filters: Annotated[Filters, Query()]):
        return filters.model_dump()

    @app.post("/login")
    def login(request, form: Annotated[Login, Form()], caller: Annotated[Caller, Header()]):
        return {"email": form.email, "remember": form.remember, "v": caller.x_api_version}

    client = TestClient(app)
    client.application = app
    return client


def _problem(response, status: int) -> dict:
    assert response.status_int == status, response.text
    assert response.content_type == PROBLEM
    assert response.json["status"] == status
    return response.json


def _errors(document: dict) -> dict[tuple, str]:
    return {(e["location"], *e["path"]): e["code"] for e in document["errors"]}


def test_a_valid_pydantic_body_reaches_the_handler(client):
    body = {"title": "lunch", "kind": "retail", "items": [{"sku": "ABC-1", "qty": 2}]}
    assert client.post_json("/orders", body).json == {"title": "lunch", "qty": [2]}


def test_every_invalid_field_of_a_pydantic_body_is_listed(client):
    body = {
        "title": "",
        "kind": "gift",
        "items": [{"sku": "nope", "qty": 0}, {"sku": "ABC-2"}, {"sku": "ABC-3", "qty": 1, "x": 1}],
        "admin": True,
    }
    document = _problem(client.post_json("/orders", body, status=422), 422)
    assert _errors(document) == {
        ("body", "title"): "length",
        ("body", "kind"): "enum",
        ("body", "items", 0, "sku"): "pattern",
        ("body", "items", 0, "qty"): "range",
        ("body", "items", 1, "qty"): "missing",
        ("body", "items", 2, "x"): "unknown_field",
        ("body", "admin"): "unknown_field",
    }
    assert document["detail"] == "the request body does not validate: 7 invalid fields"
    messages = {tuple(e["path"]): e["message"] for e in document["errors"]}
    assert messages[("title",)] == "String should have at least 1 character"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{", 400),
        (b'{"title": NaN}', 400),
        (b'{"title": "\\ud800"}', 400),
        (b"\xff\xfe", 400),
        (b"", 400),
        (b'{"title": "a", "kind": "retail", "items": [{"sku": "ABC-1", "qty": 1e400}]}', 400),
    ],
)
def test_malformed_json_is_a_400_as_for_msgspec_types(client, body, status):
    response = client.post("/orders", body, content_type="application/json", status=status)
    assert _problem(response, status)["detail"]


def test_integers_past_64_bits_are_refused_in_a_pydantic_body(client):
    body = {"title": "a", "kind": "retail", "items": [{"sku": "ABC-1", "qty": 2**64}]}
    document = _problem(client.post_json("/orders", body, status=422), 422)
    assert ("body", "items", 0, "qty") in _errors(document)


def test_a_pydantic_query_model_converts_text_and_lists_every_error(client):
    response = client.get("/search?q=tea&page=2&tags=a&tags=b")
    assert response.json == {"q": "tea", "page": 2, "tags": ["a", "b"]}
    document = _problem(client.get("/search?q=t&page=zero&sort=x", status=422), 422)
    assert _errors(document) == {
        ("query", "q"): "length",
        ("query", "page"): "type",
        ("query", "sort"): "unknown_field",
    }


def test_pydantic_form_and_header_models(client):
    ok = client.post("/login", {"email": "a@b", "remember": "yes"}, headers={"X-Api-Version": "2"})
    assert ok.json == {"email": "a@b", "remember": True, "v": 2}
    refused = client.post(
        "/login", {"remember": "maybe"}, headers={"X-Api-Version": "0"}, status=422
    )
    assert _errors(_problem(refused, 422)) == {
        ("header", "x-api-version"): "range",
        ("form", "email"): "missing",
        ("form", "remember"): "type",
    }


def test_pydantic_inputs_are_described(client):
    described = input_parameters(client.application.handler_for("login"))
    assert [(p.location, p.name, p.required) for p in described] == [
        ("header", "x-api-version", True),
        ("form", "email", True),
        ("form", "remember", False),
    ]
    body = input_parameters(client.application.handler_for("create"))
    assert [(p.location, p.name, p.type) for p in body] == [("body", "order", Order)]


def test_microback_does_not_import_pydantic_for_an_app_without_it():
    code = (
        "import sys, dataclasses\n"
        "from microback import App\n"
        "app = App(secret_key='x' * 32)\n"
        "@dataclasses.dataclass\n"
        "class P:\n"
        "    x: int\n"
        "@app.post('/p')\n"
        "def p(request, point: P):\n"
        "    return {}\n"
        "print('pydantic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
