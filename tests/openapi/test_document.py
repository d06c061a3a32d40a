"""The OpenAPI 3.1 document of an app (docs/openapi.md): what each operation takes and every
answer it can give, checked against the OpenAPI 3.1 schema by openapi-spec-validator."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from microback import App
from microback.openapi import openapi_document, operation

from .rich_app import build

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = build(f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'rich.db'}")
    return app.extensions["openapi"].document()


def valid(document: dict[str, Any]) -> None:
    errors = [error.message for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def test_the_document_of_a_rich_app_validates_against_openapi_3_1(document) -> None:
    valid(document)
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {
        "title": "Orders",
        "version": "2.1.0",
        "description": "Orders and tallies.",
    }


def test_every_route_and_method_is_an_operation_named_by_its_endpoint(document) -> None:
    operations = {
        (path, method): op["operationId"]
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    assert operations == {
        ("/admin/tallies/{period}", "get"): "tallies",
        ("/echo", "get"): "echo.get",
        ("/echo", "put"): "echo.put",
        ("/files/{name}", "get"): "file",
        ("/hooks/{hook_id}", "post"): "hook",
        ("/login", "post"): "login",
        ("/signup", "post"): "signup",
        ("/me", "get"): "me",
        ("/orders", "get"): "orders.list_orders",
        ("/orders", "post"): "orders.create_order",
        ("/orders/{order_id}", "get"): "orders.show_order",
        ("/prices/{price}/{currency}/{code}", "get"): "price",
    }  # no /hidden (include=False), no /openapi.json, /docs or its assets


def test_path_values_have_the_types_of_their_converters(document) -> None:
    def schemas(path: str) -> dict[str, Any]:
        (op,) = document["paths"][path].values()
        return {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "path"}

    assert schemas("/orders/{order_id}") == {
        "order_id": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
    }
    assert schemas("/hooks/{hook_id}") == {"hook_id": {"type": "string", "format": "uuid"}}
    assert schemas("/files/{name}") == {"name": {"type": "string"}}
    assert schemas("/admin/tallies/{period}") == {
        "period": {"type": "string", "enum": ["day", "week"]}
    }
    assert schemas("/prices/{price}/{currency}/{code}") == {
        "price": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[^/]*$", "minLength": 3, "maxLength": 3},
        "code": {"type": "string"},  # a custom converter
    }


def test_a_declared_body_and_output_are_schemas_shared_as_components(document) -> None:
    create = document["paths"]["/orders"]["post"]
    assert create["summary"] == "Place an order."
    assert create["description"] == "Each item names a product by its SKU."
    assert create["tags"] == ["orders"]
    assert create["requestBody"] == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewOrder"}}},
    }
    assert create["responses"]["201"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/OrderOut"}}
    }
    schemas = document["components"]["schemas"]
    assert schemas["NewOrder"]["required"] == ["customer", "items"]
    assert schemas["NewOrder"]["additionalProperties"] is False  # unknown fields are refused
    assert schemas["NewOrder"]["properties"]["kind"] == {
        "enum": ["retail", "wholesale"],
        "default": "retail",
    }
    assert schemas["Item"]["properties"]["sku"]["pattern"] == "^[A-Z]{3}-[0-9]+$"
    assert schemas["Item"]["properties"]["qty"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
    }
    assert schemas["OrderOut"]["properties"]["ref"] == {"type": "string", "format": "uuid"}
    # A body refuses integers past 64 bits (docs/validation.md): the schema says so.
    assert schemas["Tally"]["properties"]["count"] == {
        "type": "integer",
        "minimum": -(2**63),
        "maximum": 2**63 - 1,
    }
    listed = document["paths"]["/orders"]["get"]["responses"]["200"]["content"]
    assert listed["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/OrderOut"},
    }


def test_a_declared_query_is_one_parameter_per_field(document) -> None:
    parameters = document["paths"]["/orders"]["get"]["parameters"]
    assert parameters == [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
        {
            "name": "tag",
            "in": "query",
            "required": False,
            "schema": {"type": "array", "items": {"type": "string"}, "default": []},
        },
    ]


def test_a_declared_form_is_the_body_and_declared_headers_are_parameters(document) -> None:
    login = document["paths"]["/login"]["post"]
    form = {
        "title": "Login",
        "type": "object",
        "properties": {
            "email": {"type": "string"},
            "password": {"type": "string", "minLength": 8},
            "csrf_token": {"type": "string"},  # Form() ignores it: not an unknown field
        },
        "required": ["email", "password"],
        "additionalProperties": False,  # every other field is refused
    }
    assert login["requestBody"] == {
        "required": True,
        "content": {
            kind: {"schema": form}
            for kind in ("application/x-www-form-urlencoded", "multipart/form-data")
        },
    }
    assert login["parameters"] == [
        {
            "name": "x-request-id",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "maxLength": 64},
        },
        {
            "name": "x-retries",
            "in": "header",
            "required": False,
            "schema": {"type": "integer", "default": 0},
        },
    ]
    assert login["responses"]["422"]["description"] == (
        "The form and headers do not validate: each invalid field is in errors."
    )


def test_pydantic_models_are_described_by_pydantic(document) -> None:
    signup = document["paths"]["/signup"]["post"]
    assert signup["requestBody"]["content"]["application/json"] == {
        "schema": {"$ref": "#/components/schemas/Signup"}
    }
    schema = document["components"]["schemas"]["Signup"]
    assert schema["properties"]["email"] == {"type": "string", "minLength": 3, "title": "Email"}
    assert schema["required"] == ["email"]
    assert "additionalProperties" not in schema  # pydantic ignores unknown fields
    assert signup["parameters"] == [
        {
            "name": "q",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "title": "Q"},
        }
    ]


def statuses(document: dict[str, Any], path: str, method: str) -> list[str]:
    return list(document["paths"][path][method]["responses"])


def test_each_operation_lists_the_problems_it_can_answer(document) -> None:
    assert statuses(document, "/orders", "post") == [
        "201", "303", "400", "401", "403", "409", "413", "415", "422", "503",
    ]  # fmt: skip
    assert statuses(document, "/orders", "get") == ["200", "303", "401", "403", "422", "503"]
    assert statuses(document, "/orders/{order_id}", "get") == [
        "200", "303", "401", "403", "404", "503",
    ]  # fmt: skip
    assert statuses(document, "/hooks/{hook_id}", "post") == [
        "400", "404", "409", "410", "413", "415", "422", "429", "503", "default",
    ]  # fmt: skip
    responses = document["paths"]["/hooks/{hook_id}"]["post"]["responses"]
    assert responses["429"]["description"] == "Too many requests (limit 10/minute)."
    assert "Retry-After" in responses["429"]["headers"]
    assert responses["410"] == {"description": "The hook was deleted.", "content": PROBLEM}
    forbidden = document["paths"]["/orders"]["post"]["responses"]["403"]["description"]
    assert "lacks the scope orders:write" in forbidden
    assert "CSRF token" in forbidden
    role = document["paths"]["/admin/tallies/{period}"]["get"]["responses"]["403"]
    assert "This needs the role admin or auditor." in role["description"]


def test_a_route_that_declares_nothing_takes_and_answers_anything(document) -> None:
    echo = document["paths"]["/echo"]["put"]
    # Any schema, not {"type": "object"}: the handler refuses nothing a fuzzer could send.
    assert echo["requestBody"]["content"] == {
        kind: {"schema": {}}
        for kind in (
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        )
    }
    assert "required" not in echo["requestBody"]
    assert echo["responses"]["default"]["content"] == {"*/*": {"schema": {}}}
    assert "requestBody" not in document["paths"]["/echo"]["get"]


def test_security_schemes_and_requirements_follow_the_guards(document) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "session",
        "description": schemes["session"]["description"],
    }
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"] == "bearer"
    assert "orders:read, orders:write" in schemes["bearer"]["description"]
    assert schemes["csrf"]["in"] == "header"
    assert schemes["csrf"]["name"] == "X-CSRF-Token"

    def security(path: str, method: str) -> Any:
        return document["paths"][path][method].get("security")

    assert security("/orders", "post") == [
        {"session": [], "csrf": []},
        {"bearer": ["orders:write"]},
    ]
    assert security("/orders", "get") == [{"session": []}, {"bearer": ["orders:read"]}]
    assert security("/me", "get") == [{"session": []}]  # tokens are refused: no scope
    assert security("/admin/tallies/{period}", "get") == [{"session": ["admin", "auditor"]}]
    assert security("/echo", "put") == [{}, {"session": [], "csrf": []}]  # anyone; CSRF
    assert security("/echo", "get") is None
    assert security("/hooks/{hook_id}", "post") is None  # csrf_exempt


def test_an_app_without_routes_or_extensions_has_a_valid_document() -> None:
    app = App()

    document = openapi_document(app)

    valid(document)
    assert document["paths"] == {}
    assert "securitySchemes" not in document["components"]


def test_an_app_without_database_or_security_documents_only_what_applies() -> None:
    app = App()

    @app.get("/plain")
    @operation(status=204)
    def plain(request):
        return "", 204

    document = openapi_document(app, title="Plain", version="1")

    valid(document)
    assert document["paths"]["/plain"]["get"]["responses"] == {
        "204": {"description": "Success, without content."}  # no media type: none is sent
    }


def test_operation_refuses_statuses_it_cannot_document() -> None:
    with pytest.raises(ValueError, match="success from 200 to 399, not 404"):
        operation(status=404)
    with pytest.raises(ValueError, match="statuses from 100 to 599: 700"):
        operation(responses={700: "?"})


def test_the_example_apps_documents_validate(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    for name in ("notes", "accounts"):
        result = subprocess.run(
            [sys.executable, "-m", "microback", "openapi", f"examples/{name}/app.py:app"],
            cwd=repo,
            env={
                "PATH": "/usr/bin:/bin",
                "DATABASE_URL": f"sqlite:///{tmp_path / name}.db",
                "MICROBACK_SECRET_KEY": "k" * 40,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        import json

        document = json.loads(result.stdout)
        valid(document)
        assert document["paths"], name


class Custom:
    """A class msgspec converts from attributes, but has no JSON Schema for."""


@dataclasses.dataclass
class Odd:
    thing: Custom


@dataclasses.dataclass
class Plain:
    name: str


def test_a_type_without_json_schema_is_any_value_and_the_rest_is_described() -> None:
    app = App()

    @app.get("/odd")
    def odd(request) -> Odd:
        return Odd(Custom())

    @app.get("/plain")
    def plain(request) -> Plain:
        return Plain("x")

    document = openapi_document(app)

    valid(document)
    assert document["paths"]["/odd"]["get"]["responses"]["200"]["content"] == {
        "application/json": {"schema": {}}
    }
    assert document["components"]["schemas"]["Plain"]["required"] == ["name"]
