import logging

import pytest

from microback import App, abort
from microback.security import CookieSessions
from microback.security.cors import Cors
from microback.security.csrf import Csrf, csrf_token
from microback.testing import TestClient

SECRET = "cors-test-secret-0123456789abcdef0123"
APP = "https://app.example"
EVIL = "https://evil.example"
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "PUT"}
CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Expose-Headers",
)


def make_app(**options):
    app = App(secret_key=SECRET)
    options.setdefault("allow_origins", [APP])
    Cors(app, **options)
    calls = []

    @app.route("/items", methods=["GET", "POST", "PUT"])
    def items(request):
        return {"items": []}, {"X-Total": "0"}

    @app.route("/explicit", methods=["GET", "OPTIONS"])
    def explicit(request):
        calls.append(request.method)
        return {"explicit": True}

    @app.get("/crash")
    def crash(request):
        return {"ratio": 1 / 0}

    @app.get("/forbidden")
    def forbidden(request):
        abort(403, "not yours")

    app.calls = calls
    return app


def cors_headers(response):
    return {name: response.headers[name] for name in CORS_HEADERS if name in response.headers}


def vary(response):
    return {v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()}


# --- configuration ----------------------------------------------------------------------------


def test_any_origin_with_credentials_is_refused_at_start_up():
    with pytest.raises(ValueError, match=r"allow_origins=\['\*'\] with allow_credentials=True"):
        make_app(allow_origins=["*"], allow_credentials=True)


@pytest.mark.parametrize(
    ("origins", "problem"),
    [
        ([], "allow_origins is empty"),
        (["*", APP], "'\\*' already allows every origin"),
        (["null"], "'null' is the origin of every sandboxed frame"),
        (["https://app.example/"], "is not an origin; write scheme://host"),
        (["app.example"], "is not an origin"),
        (["https://app.example/api"], "is not an origin"),
        (["ftp://app.example"], "is not an origin"),
    ],
)
def test_bad_origins_are_refused_at_start_up(origins, problem):
    with pytest.raises(ValueError, match=problem):
        make_app(allow_origins=origins)


def test_a_string_is_not_a_list_of_origins():
    with pytest.raises(TypeError, match=r"must be a list such as \['https://app.example'\]"):
        make_app(allow_origins=APP)


@pytest.mark.parametrize(
    "options",
    [
        {"allow_methods": ["*"]},
        {"allow_headers": ["*"]},
        {"allow_headers": ["X Bad"]},
        {"expose_headers": ["X-Ok", ""]},
        {"max_age": -1},
        {"max_age": True},
        {"max_age": "600"},
    ],
)
def test_bad_lists_and_max_age_are_refused_at_start_up(options):
    with pytest.raises(ValueError):
        make_app(**options)


# --- actual requests --------------------------------------------------------------------------


def test_allowed_origin_may_read_the_response():
    response = TestClient(make_app()).get("/items", headers={"Origin": APP})
    assert cors_headers(response) == {"Access-Control-Allow-Origin": APP}
    assert "Origin" in vary(response)


@pytest.mark.parametrize(
    "origin",
    [EVIL, "http://app.example", "https://app.example:8443", "https://app.example.evil.example"],
)
def test_other_origins_get_no_cors_headers(origin):
    response = TestClient(make_app()).get("/items", headers={"Origin": origin})
    assert response.json == {"items": []}  # answered: CORS only decides what a page may read
    assert cors_headers(response) == {}
    assert "Origin" in vary(response)


def test_vary_origin_even_without_an_origin():
    # The same URL answers differently with and without Origin; caches must keep both apart.
    response = TestClient(make_app()).get("/items")
    assert cors_headers(response) == {}
    assert vary(response) == {"Origin"}


def test_configured_origins_are_normalized():
    app = make_app(allow_origins=["HTTPS://App.Example:443"])
    response = TestClient(app).get("/items", headers={"Origin": APP})
    assert response.headers["Access-Control-Allow-Origin"] == APP


def test_credentials_and_exposed_headers():
    app = make_app(allow_credentials=True, expose_headers=["X-Total"])
    response = TestClient(app).post("/items", headers={"Origin": APP})
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "X-Total",
    }


def test_evil_origin_with_credentials_gets_neither_origin_nor_credentials():
    app = make_app(allow_credentials=True)
    CookieSessions(app)

    @app.get("/me")
    def me(request):
        request.session["user"] = "alice"
        return {"user": request.session["user"]}

    client = TestClient(app)
    client.get("/me")
    assert "session" in client.cookies
    response = client.get("/me", headers={"Origin": EVIL})
    assert cors_headers(response) == {}
    assert {"Origin", "Cookie"} <= vary(response)


def test_any_origin_without_credentials():
    app = make_app(allow_origins=["*"])
    response = TestClient(app).get("/items", headers={"Origin": EVIL})
    assert cors_headers(response) == {"Access-Control-Allow-Origin": "*"}
    assert "Origin" not in vary(response)  # the same answer for every origin
    assert cors_headers(TestClient(app).get("/items")) == {}


@pytest.mark.parametrize(
    ("path", "status"), [("/nowhere", 404), ("/crash", 500), ("/forbidden", 403)]
)
def test_errors_carry_cors_headers_so_the_page_sees_them(path, status, caplog):
    app = make_app(allow_credentials=True)
    with caplog.at_level(logging.CRITICAL, logger="microback.app"):
        response = TestClient(app).get(path, headers={"Origin": APP}, status=status)
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.json["status"] == status


def test_method_not_allowed_carries_cors_headers():
    response = TestClient(make_app()).delete("/items", headers={"Origin": APP}, status=405)
    assert response.headers["Access-Control-Allow-Origin"] == APP


# --- preflight --------------------------------------------------------------------------------


def preflight_headers(max_age="600", methods="GET, HEAD, POST, PUT, PATCH, DELETE"):
    return {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": "Authorization, Content-Type, X-CSRF-Token",
        "Access-Control-Max-Age": max_age,
    }


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/items", id="route without OPTIONS: the app's automatic answer"),
        pytest.param("/explicit", id="route with an OPTIONS handler"),
        pytest.param("/nowhere", id="no route"),
    ],
)
def test_preflight_from_an_allowed_origin(path):
    app = make_app()
    response = TestClient(app).options(path, headers=PREFLIGHT)
    assert response.status_int == 200
    assert response.body == b""
    assert cors_headers(response) == preflight_headers()
    assert "Origin" in vary(response)
    assert app.calls == []  # the OPTIONS handler does not run for a preflight


def test_preflight_with_credentials_and_settings():
    app = make_app(
        allow_credentials=True,
        allow_methods=["get", "POST"],
        allow_headers=["Content-Type"],
        expose_headers=["X-Total"],
        max_age=60,
    )
    response = TestClient(app).options("/items", headers=PREFLIGHT)
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "60",
    }


@pytest.mark.parametrize(("path", "status"), [("/items", 200), ("/nowhere", 404)])
def test_preflight_from_another_origin_gets_no_cors_headers(path, status):
    # Answered as any OPTIONS request is; without Access-Control-Allow-Origin the browser
    # does not send the real request.
    headers = {"Origin": EVIL, "Access-Control-Request-Method": "PUT"}
    response = TestClient(make_app()).options(path, headers=headers, status=status)
    assert cors_headers(response) == {}
    assert "Origin" in vary(response)


def test_preflight_for_any_origin():
    app = make_app(allow_origins=["*"])
    headers = {"Origin": EVIL, "Access-Control-Request-Method": "PUT"}
    response = TestClient(app).options("/nowhere", headers=headers)
    assert response.status_int == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Methods" in response.headers


def test_plain_options_is_not_a_preflight():
    app = make_app()
    response = TestClient(app).options("/explicit", headers={"Origin": APP})
    assert response.json == {"explicit": True}
    assert app.calls == ["OPTIONS"]
    assert cors_headers(response) == {"Access-Control-Allow-Origin": APP}


def test_a_refused_preflight_stays_refused():
    app = App(secret_key=SECRET)

    @app.before_request
    def closed(request):
        abort(503, "maintenance")

    Cors(app, allow_origins=[APP])
    response = TestClient(app).options("/nowhere", headers=PREFLIGHT, status=503)
    assert cors_headers(response) == {}


def test_headers_from_earlier_hooks_are_kept_on_preflights():
    app = App(secret_key=SECRET)

    @app.after_request
    def nosniff(request, response):
        response.headers["X-Content-Type-Options"] = "nosniff"

    Cors(app, allow_origins=[APP])

    @app.post("/items")
    def items(request):
        return {}

    for path in ("/items", "/nowhere"):
        response = TestClient(app).options(path, headers=PREFLIGHT)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Access-Control-Allow-Origin"] == APP


# --- with CSRF --------------------------------------------------------------------------------


def test_single_page_app_on_another_origin_with_csrf():
    app = App(secret_key=SECRET, allowed_hosts=["api.example"])
    CookieSessions(app, same_site="None", secure=True)
    Cors(app, allow_origins=[APP], allow_credentials=True)
    Csrf(app, trusted_origins=[APP])

    @app.get("/csrf")
    def get_token(request):
        return {"csrf_token": csrf_token(request)}

    @app.post("/notes")
    def create(request):
        return {"created": True}, 201

    client = TestClient(app)
    token = client.get("https://api.example/csrf", headers={"Origin": APP}).json["csrf_token"]
    preflight = client.options(
        "https://api.example/notes",
        headers={**PREFLIGHT, "Access-Control-Request-Headers": "content-type,x-csrf-token"},
    )
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    headers = {"Origin": APP, "X-CSRF-Token": token}
    response = client.post_json("https://api.example/notes", {}, headers=headers, status=201)
    assert response.headers["Access-Control-Allow-Origin"] == APP
    # The CSRF refusal is readable by the page, so it can show why.
    refused = client.post_json(
        "https://api.example/notes", {}, headers={"Origin": APP}, status=403
    )
    assert refused.headers["Access-Control-Allow-Origin"] == APP
    assert refused.json["detail"].startswith("CSRF token missing")


def test_cors_does_not_make_an_origin_trusted_for_csrf():
    app = App(secret_key=SECRET)
    CookieSessions(app)
    Cors(app, allow_origins=[APP], allow_credentials=True)
    Csrf(app)

    @app.post("/notes")
    def create(request):
        return {"created": True}, 201

    response = TestClient(app).post("/notes", headers={"Origin": APP}, status=403)
    assert response.json["detail"] == (f"cross-site request refused: Origin {APP} is not trusted")
