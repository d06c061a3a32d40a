"""The OpenAPI 3.1 document of an app: one operation per route and method.

Each operation lists what the route takes (typed path values, the declared query, headers,
body or form) and every answer it can give: its success, with the declared output's schema,
and each problem document it can produce, with the reason, as it applies (400 malformed JSON,
401/403 from its guards and CSRF, 404, 409, 413, 415, 422, 429, 503). A handler that declares
nothing still appears, with a body and an answer of any shape (``default``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from ..app import App
from ..http.problem import PROBLEM_JSON
from ..routing import path_template
from ..validation.fields import header_name
from .facts import Declared, RouteFacts, route_facts
from .schemas import PROBLEM_SCHEMAS, REF, TypeSchemas, converter_schema

__all__ = ["OPENAPI_VERSION", "openapi_document"]

OPENAPI_VERSION = "3.1.0"
_PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": REF.format(name="Problem")}}}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_ANY: dict[str, Any] = {"*/*": {"schema": {}}}
# Statuses whose answers carry no content, so no media type (RFC 9110, 15.3.5 and 15.4.5):
# "*/*" there made a client expect a Content-Type the server does not send.
_NO_CONTENT = (204, 304)
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_PLACES = {"body": "body", "form": "form", "header": "headers", "query": "query string"}


def openapi_document(
    app: App, *, title: str = "API", version: str = "0.1.0", description: str | None = None
) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document of ``app``'s routes, as JSON-ready data.

    ``title`` and ``version`` are the API's (``info``), not microback's.
    """
    return _Builder(app).document(title, version, description)


class _Builder:
    def __init__(self, app: App) -> None:
        self.app = app
        self.facts = route_facts(app)
        self.types = TypeSchemas()
        # Each route's declared types, numbered, before any schema is made.
        self.numbers: list[dict[str, int]] = []
        for facts in self.facts:
            numbers: dict[str, int] = {}
            for item in facts.inputs:  # one model (or body type) per location
                if item.location not in numbers:
                    body = item.location == "body"
                    numbers[item.location] = self.types.add(
                        item.model, body=body, closed=body and item.closed
                    )
            if facts.output is not None:
                numbers["return"] = self.types.add(facts.output)
            self.numbers.append(numbers)
        self.types.resolve()
        self.scopes: set[str] = set()
        self.schemes_used: set[str] = set()

    def document(self, title: str, version: str, description: str | None) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        operation_ids = _operation_ids(self.facts)
        for facts, numbers, operation_id in zip(
            self.facts, self.numbers, operation_ids, strict=True
        ):
            item = paths.setdefault(path_template(facts.path), {})
            item[facts.method.lower()] = self.operation(facts, numbers, operation_id)
        info: dict[str, Any] = {"title": title, "version": version}
        if description:
            info["description"] = description
        components: dict[str, Any] = {"schemas": {**self.types.components, **PROBLEM_SCHEMAS}}
        schemes = self.security_schemes()
        if schemes:
            components["securitySchemes"] = schemes
        tags = sorted({tag for op in _operations(paths) for tag in op.get("tags", ())})
        document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info}
        if tags:
            document["tags"] = [{"name": tag} for tag in tags]
        document["paths"] = paths
        document["components"] = components
        return document

    # --- one operation --------------------------------------------------------------------

    def operation(
        self, facts: RouteFacts, numbers: dict[str, int], operation_id: str
    ) -> dict[str, Any]:
        told = facts.told
        summary, description = _doc(facts.handler)
        operation: dict[str, Any] = {}
        tags = list(told.tags) or _group(facts.endpoint)
        if tags:
            operation["tags"] = tags
        if told.summary or summary:
            operation["summary"] = told.summary or summary
        if told.description or description:
            operation["description"] = told.description or description
        operation["operationId"] = operation_id
        parameters = self.parameters(facts, numbers)
        if parameters:
            operation["parameters"] = parameters
        body = self.request_body(facts, numbers)
        if body is not None:
            operation["requestBody"] = body
        operation["responses"] = self.responses(facts, numbers, body is not None)
        security = self.security(facts)
        if security is not None:
            operation["security"] = security
        if told.deprecated:
            operation["deprecated"] = True
        return operation

    def parameters(self, facts: RouteFacts, numbers: dict[str, int]) -> list[dict[str, Any]]:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": converter_schema(converter)}
            for name, converter in facts.converters
        ]
        for location in ("query", "header"):
            declared = facts.declared(location)
            if not declared:
                continue
            properties = self.types.properties(numbers[location])
            read_as = header_name if location == "header" else str
            by_name = {read_as(name): schema for name, schema in properties.items()}
            for item in declared:
                schema = by_name.get(item.name, {})
                parameter: dict[str, Any] = {
                    "name": item.name,
                    "in": location,
                    "required": item.required,
                    "schema": schema,
                }
                if "description" in schema:
                    parameter["description"] = schema["description"]
                parameters.append(parameter)
        return parameters

    def request_body(self, facts: RouteFacts, numbers: dict[str, int]) -> dict[str, Any] | None:
        if "body" in numbers:
            schema = self.types.schema(numbers["body"])
            return {"required": True, "content": {"application/json": {"schema": schema}}}
        form = facts.declared("form")
        if form:
            schema = self.form_schema(numbers["form"], form[0])
            return {
                "required": any(item.required for item in form),
                "content": {kind: {"schema": schema} for kind in _FORMS},
            }
        if facts.method in ("POST", "PUT", "PATCH") and not facts.inputs:
            # Not declared: the handler reads whatever it reads.
            return {
                "description": "Not declared by the handler.",
                "content": {kind: {"schema": {}} for kind in ("application/json", *_FORMS)},
            }
        return None

    def form_schema(self, number: int, declared: Declared) -> dict[str, Any]:
        """A form model's schema, with the fields a form accepts beyond it (csrf_token);
        written out, as a closed form refuses any other."""
        model = self.types.schema(number)
        if not declared.ignore and not declared.closed:
            return model
        schema = dict(self.types.component(number))
        schema["properties"] = {
            **schema.get("properties", {}),
            **{name: {"type": "string"} for name in declared.ignore},
        }
        if declared.closed:
            schema["additionalProperties"] = False
        return schema

    def responses(
        self, facts: RouteFacts, numbers: dict[str, int], has_body: bool
    ) -> dict[str, Any]:
        responses: dict[str, Any] = {}
        status = facts.told.status or 200
        if "return" in numbers:
            schema = self.types.schema(numbers["return"])
            responses[str(status)] = {
                "description": "The declared output.",
                "content": {"application/json": {"schema": schema}},
            }
        elif status in _NO_CONTENT:
            responses[str(status)] = {"description": "Success, without content."}
        elif facts.told.status is not None:
            responses[str(status)] = {"description": "Success.", "content": _ANY}
        for code, (reasons, headers) in sorted(self.problems(facts, has_body).items()):
            response: dict[str, Any] = {"description": " ".join(reasons)}
            if code >= 400:
                response["content"] = _PROBLEM
            if headers:
                response["headers"] = headers
            responses[str(code)] = response
        if "return" not in numbers and facts.told.status is None:
            responses["default"] = {
                "description": "Not declared by the handler: any status and body.",
                "content": _ANY,
            }
        return responses

    def problems(
        self, facts: RouteFacts, has_body: bool
    ) -> dict[int, tuple[list[str], dict[str, Any]]]:
        """Each error status the route can answer, with its reasons and headers."""
        found: dict[int, tuple[list[str], dict[str, Any]]] = {}

        def add(code: int, reason: str, headers: dict[str, Any] | None = None) -> None:
            reasons, known = found.setdefault(code, ([], {}))
            reasons.append(reason)
            known.update(headers or {})

        locations = {item.location for item in facts.inputs}
        if "body" in locations:
            add(400, "The body is empty, malformed JSON, or nested too deeply.")
            add(415, "The body is not sent as Content-Type: application/json.")
        if locations:
            places = " and ".join(_PLACES[location] for location in sorted(locations))
            verb = "does" if locations == {"body"} or locations == {"form"} else "do"
            add(422, f"The {places} {verb} not validate: each invalid field is in errors.")
        if facts.converters:
            add(404, "Nothing here: a path value does not fit its type, or names nothing.")
        self.guard_problems(facts, add)
        if facts.database and facts.unsafe:
            add(409, "Conflict: a unique value is taken, or a row is still referenced.")
        if has_body:
            limit = self.app.settings.describe("max_content_length")
            add(413, f"The body is larger than {limit} (setting max_content_length).")
        if facts.rate_limit is not None:
            add(429, f"Too many requests (limit {facts.rate_limit}).", _RETRY_AFTER)
        if facts.database:
            add(503, "The database is unavailable or overloaded; try again.", _RETRY_AFTER)
        for code, reason in facts.told.responses.items():
            add(code, reason)
        return found

    def guard_problems(self, facts: RouteFacts, add: Any) -> None:
        if facts.login:
            add(
                401,
                "Not logged in, or the API token is invalid, expired or revoked.",
                {"WWW-Authenticate": {"schema": {"type": "string"}}},
            )
            auth = self.app.extensions.get("auth")
            if getattr(auth, "login_url", None):
                add(
                    303,
                    "A browser that is not logged in is sent to the login page.",
                    {"Location": {"schema": {"type": "string"}}},
                )
            if not facts.scopes:
                add(403, "API tokens cannot call this route: it declares no scope.")
        for roles in facts.roles:
            add(403, f"This needs the role {' or '.join(sorted(roles))}.")
        for scope in sorted(facts.scopes):
            add(403, f"The API token lacks the scope {scope}.")
        if facts.csrf:
            add(403, "Cross-site request refused (Origin), or the CSRF token is missing.")

    # --- security -------------------------------------------------------------------------

    def security(self, facts: RouteFacts) -> list[dict[str, list[str]]] | None:
        session: dict[str, list[str]] = {}
        if "sessions" in self.app.extensions:
            roles = sorted(set().union(*facts.roles)) if facts.roles else []
            session["session"] = roles
            if facts.csrf:
                session["csrf"] = []
        if facts.login:
            requirements = [session] if session else []
            if facts.scopes:
                requirements.append({"bearer": sorted(facts.scopes)})
                self.scopes.update(facts.scopes)
        elif facts.csrf and session:
            requirements = [{}, session]  # anonymous, or by session with the token
        else:
            return None
        if not requirements:
            return None
        for requirement in requirements:
            self.schemes_used.update(requirement)
        return requirements

    def security_schemes(self) -> dict[str, Any]:
        schemes: dict[str, Any] = {}
        sessions = self.app.extensions.get("sessions")
        if "session" in self.schemes_used and sessions is not None:
            schemes["session"] = {
                "type": "apiKey",
                "in": "cookie",
                "name": sessions.cookie_name,
                "description": "The session cookie set by logging in; a route's roles are "
                "listed in its requirement.",
            }
        if "bearer" in self.schemes_used:
            listed = ", ".join(sorted(self.scopes))
            schemes["bearer"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token (Authorization: Bearer ...). It reaches only "
                f"routes that declare a scope it has; the scopes: {listed}.",
            }
        csrf = self.app.extensions.get("csrf")
        if "csrf" in self.schemes_used and csrf is not None:
            schemes["csrf"] = {
                "type": "apiKey",
                "in": "header",
                "name": csrf.header_name,
                "description": "The CSRF token of the session, required on unsafe requests "
                "that carry the session cookie.",
            }
        return schemes


def _operations(paths: dict[str, dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for item in paths.values():
        yield from item.values()


def _operation_ids(facts: list[RouteFacts]) -> list[str]:
    """The endpoint, with the method after it when the endpoint serves several."""
    counts: dict[str, int] = {}
    for item in facts:
        counts[item.endpoint] = counts.get(item.endpoint, 0) + 1
    return [
        item.endpoint if counts[item.endpoint] == 1 else f"{item.endpoint}.{item.method.lower()}"
        for item in facts
    ]


def _group(endpoint: str) -> list[str]:
    """The name of the Router group an endpoint is in ("api" of "api.list_notes")."""
    group, _, _ = endpoint.rpartition(".")
    return [group] if group else []


def _doc(handler: Any) -> tuple[str | None, str | None]:
    text = inspect.getdoc(handler)
    if not text:
        return None, None
    summary, _, rest = text.partition("\n")
    return summary.strip() or None, rest.strip() or None
