"""Declared form fields and headers (docs/validation.md), every invalid value of every
input in one 422, and the description of what a handler reads (input_parameters)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Literal

import msgspec
import pytest

from microback import App, Body, Form, Header, Query
from microback.security import CookieSessions
from microback.security.csrf import Csrf, csrf_token
from microback.testing import TestClient
from microback.validation import InputParameter, input_parameters

PROBLEM = "application/problem+json"


@dataclasses.dataclass
class Signup:
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+$")]
    age: Annotated[int, msgspec.Meta(ge=13, le=150)]
    plan: Literal["free", "pro"] = "free"
    topics: list[str] = dataclasses.field(default_factory=list)
    newsletter: bool = False


class Client(msgspec.Struct):
    x_api_version: Annotated[int, msgspec.Meta(ge=1, le=3)]
    if_match: str | None = None
    accept_language: list[str] = []


@dataclasses.dataclass
class Page:
    page: Annotated[int, msgspec.Meta(ge=1)] = 1


@dataclasses.dataclass
class Point:
    x: int
    y: int


@pytest.fixture
def app() -> App:
    app = App(secret_key="x" * 32)

    @app.post("/signup")
    def signup(request, form: Annotated[Signup, Form()]):
        return dataclasses.asdict(form)

    @app.get("/client")
    def client_info(request, headers: Annotated[Client, Header()]):
        return {
            "version": headers.x_api_version,
            "if_match": headers.if_match,
            "languages": headers.accept_language,
        }

    @app.post("/boards/<int:board>/points")
    def add_point(
        request,
        board: int,
        paging: Annotated[Page, Query()],
        headers: Annotated[Client, Header()],
        point: Point,
    ):
        return {"board": board, "page": paging.page, "x": point.x}

    return app


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app)


def _problem(response, status: int) -> dict:
    assert response.status_int == status, response.text
    assert response.content_type == PROBLEM
    return response.json


def _errors(document: dict) -> dict[tuple[str, tuple], str]:
    return {(e["location"], tuple(e["path"])): e["code"] for e in document["errors"]}


def test_a_valid_form_reaches_the_handler_converted(client):
    form = [("email", "ada@example.com"), ("age", "36"), ("plan", "pro")]
    form += [("topics", "math"), ("topics", "engines"), ("newsletter", "true")]
    assert client.post("/signup", form).json == {
        "email": "ada@example.com",
        "age": 36,
        "plan": "pro",
        "topics": ["math", "engines"],
        "newsletter": True,
    }


def test_a_multipart_form_is_read_the_same_way(client):
    response = client.post(
        "/signup",
        {"email": "ada@example.com", "age": "36"},
        content_type="multipart/form-data",
    )
    assert response.json["age"] == 36


def test_every_invalid_form_field_is_listed_with_location_form(client):
    form = {"email": "nobody", "age": "ten", "plan": "gold", "admin": "1"}
    document = _problem(client.post("/signup", form, status=422), 422)
    assert _errors(document) == {
        ("form", ("email",)): "pattern",
        ("form", ("age",)): "type",
        ("form", ("plan",)): "enum",
        ("form", ("admin",)): "unknown_field",
    }
    assert document["detail"] == "the form does not validate: 4 invalid fields"


def test_a_missing_form_field_and_an_empty_body(client):
    document = _problem(client.post("/signup", {"email": "a@b"}, status=422), 422)
    assert _errors(document) == {("form", ("age",)): "missing"}
    empty = _problem(client.post("/signup", status=422), 422)
    assert _errors(empty) == {("form", ("email",)): "missing", ("form", ("age",)): "missing"}


def test_a_json_body_where_a_form_is_declared_is_a_415(client):
    response = client.post_json("/signup", {"email": "a@b", "age": 20}, status=415)
    assert "expected a form body" in _problem(response, 415)["detail"]
    assert "got 'application/json'" in response.json["detail"]


def test_the_csrf_field_of_a_protected_form_is_not_an_unknown_field():
    app = App(secret_key="x" * 32)
    CookieSessions(app)
    Csrf(app)

    @app.get("/token")
    def token(request):
        return {"token": csrf_token(request)}

    @app.post("/signup")
    def signup(request, form: Annotated[Signup, Form()]):
        return {"age": form.age}

    client = TestClient(app)
    csrf = client.get("/token").json["token"]
    form = {"email": "ada@example.com", "age": "36", "csrf_token": csrf}
    assert client.post("/signup", form).json == {"age": 36}


def test_headers_are_read_by_name_case_insensitively_and_converted(client):
    headers = {"X-API-Version": "2", "if-match": '"v7"', "Accept-Language": "fr, en"}
    assert client.get("/client", headers=headers).json == {
        "version": 2,
        "if_match": '"v7"',
        "languages": ["fr", "en"],
    }


def test_invalid_and_missing_headers_are_listed_with_location_header(client):
    document = _problem(client.get("/client", status=422), 422)
    assert _errors(document) == {("header", ("x-api-version",)): "missing"}
    wrong = client.get("/client", headers={"X-API-Version": "9"}, status=422)
    assert _errors(_problem(wrong, 422)) == {("header", ("x-api-version",)): "range"}
    assert wrong.json["detail"] == "the request headers do not validate: 1 invalid field"


def test_every_input_is_checked_and_all_errors_are_one_problem(client):
    response = client.post(
        "/boards/3/points?page=0&sort=x",
        '{"x": "one"}',
        content_type="application/json",
        status=422,
    )
    document = _problem(response, 422)
    assert [(e["location"], e["path"], e["code"]) for e in document["errors"]] == [
        ("query", ["sort"], "unknown_field"),
        ("query", ["page"], "range"),
        ("header", ["x-api-version"], "missing"),
        ("body", ["x"], "type"),
        ("body", ["y"], "missing"),
    ]
    assert document["detail"] == "the request does not validate: 5 invalid fields"
    good = client.post_json(
        "/boards/3/points?page=2", {"x": 1, "y": 2}, headers={"X-Api-Version": "1"}
    )
    assert good.json == {"board": 3, "page": 2, "x": 1}


def test_malformed_json_is_still_a_400_when_other_inputs_are_wrong_too(client):
    response = client.post(
        "/boards/3/points?page=0", "{", content_type="application/json", status=400
    )
    assert _problem(response, 400)["detail"].startswith("malformed JSON")


def test_input_parameters_describe_what_a_handler_reads(app):
    described = input_parameters(app.handler_for("add_point"))
    page = typing.get_type_hints(Page, include_extras=True)["page"]
    version = typing.get_type_hints(Client, include_extras=True)["x_api_version"]
    assert described == (
        InputParameter("query", "page", page, False, Annotated[Page, Query()]),
        InputParameter(
            "header",
            "x-api-version",
            version,
            True,
            Annotated[Client, Header()],
        ),
        InputParameter("header", "if-match", str | None, False, Annotated[Client, Header()]),
        InputParameter("header", "accept-language", list[str], False, Annotated[Client, Header()]),
        InputParameter("body", "point", Point, True, Point),
    )
    form = input_parameters(app.handler_for("signup"))
    assert [(p.location, p.name, p.required) for p in form] == [
        ("form", "email", True),
        ("form", "age", True),
        ("form", "plan", False),
        ("form", "topics", False),
        ("form", "newsletter", False),
    ]


def test_a_handler_without_declared_input_describes_nothing():
    app = App(secret_key="x" * 32)

    @app.get("/plain")
    def plain(request):
        return {}

    assert input_parameters(app.handler_for("plain")) == ()


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (Annotated[int, Form()], "the form parameter 'value' of .* must be a dataclass"),
        (Annotated[str, Header()], "the header parameter 'value' of .* must be a dataclass"),
    ],
)
def test_a_form_or_header_that_is_not_a_model_is_an_error_at_registration(annotation, message):
    app = App(secret_key="x" * 32)

    def take(request, value):
        return {}

    take.__annotations__["value"] = annotation
    with pytest.raises(TypeError, match=message):
        app.post("/x")(take)


def test_a_form_and_a_json_body_together_are_an_error_at_registration():
    app = App(secret_key="x" * 32)
    with pytest.raises(TypeError, match="several bodies"):

        @app.post("/x")
        def take(request, form: Annotated[Signup, Form()], point: Point):
            return {}


def test_a_renamed_csrf_field_is_ignored_when_the_form_says_so():
    app = App(secret_key="x" * 32)

    @app.post("/points")
    def add(request, point: Annotated[Point, Form(ignore=("xsrf",))]):
        return {"x": point.x}

    client = TestClient(app)
    assert client.post("/points", {"x": "1", "y": "2", "xsrf": "t"}).json == {"x": 1}
    refused = client.post("/points", {"x": "1", "y": "2", "csrf_token": "t"}, status=422)
    assert _errors(refused.json) == {("form", ("csrf_token",)): "unknown_field"}


def test_body_is_still_exported_for_non_model_bodies():
    assert Body().forbid_unknown_fields


def test_the_openapi_document_names_headers_as_they_are_read(app):
    from microback.openapi import openapi_document

    operation = openapi_document(app)["paths"]["/boards/{board}/points"]["post"]
    headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert headers == ["x-api-version", "if-match", "accept-language"]
    described = input_parameters(app.handler_for("add_point"))
    assert headers == [p.name for p in described if p.location == "header"]
