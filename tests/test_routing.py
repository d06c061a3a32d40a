import uuid

import pytest
from werkzeug.routing import BuildError
from werkzeug.test import EnvironBuilder

from microback import App, BaseConverter, Router
from microback.testing import TestClient


def test_converters_pass_typed_values_to_the_handler(app, client):
    @app.get("/notes/<int:note_id>")
    def note(request, note_id):
        return {"id": note_id, "type": type(note_id).__name__}

    @app.get("/things/<uuid:thing>")
    def thing(request, thing):
        return {"thing": str(thing), "type": type(thing).__name__}

    @app.get("/files/<path:name>")
    def file(request, name):
        return {"name": name}

    assert client.get("/notes/42").json == {"id": 42, "type": "int"}
    assert client.get("/notes/abc", status=404)
    some = uuid.uuid4()
    assert client.get(f"/things/{some}").json == {"thing": str(some), "type": "UUID"}
    assert client.get("/files/a/b/c.txt").json == {"name": "a/b/c.txt"}


def test_custom_converter(app, client):
    class Slug(BaseConverter):
        regex = r"[a-z0-9]+(?:-[a-z0-9]+)*"

        def to_python(self, value):
            return value.split("-")

        def to_url(self, value):
            return "-".join(value)

    app.add_converter("slug", Slug)

    @app.get("/posts/<slug:words>")
    def post(request, words):
        return {"words": words}

    assert client.get("/posts/hello-big-world").json == {"words": ["hello", "big", "world"]}
    assert client.get("/posts/Not_A_Slug", status=404)
    assert app.url_for("post", words=["a", "b"]) == "/posts/a-b"


def test_unknown_converter_fails_at_registration(app):
    with pytest.raises(LookupError, match="nosuch"):
        app.add_route("/x/<nosuch:v>", lambda request, v: "")


def test_method_shortcuts_and_route_with_methods(app, client):
    @app.route("/items", methods=["GET", "POST"])
    def items(request):
        return {"method": request.method}

    @app.put("/items/<int:i>")
    def put(request, i):
        return {"put": i}

    @app.patch("/items/<int:i>")
    def patch(request, i):
        return {"patch": i}

    @app.delete("/items/<int:i>")
    def delete(request, i):
        return "", 204

    assert client.get("/items").json == {"method": "GET"}
    assert client.post("/items").json == {"method": "POST"}
    assert client.put("/items/1").json == {"put": 1}
    assert client.patch("/items/2").json == {"patch": 2}
    assert client.delete("/items/3").status_int == 204


def test_methods_must_be_a_list(app):
    with pytest.raises(TypeError, match=r"\['POST'\]"):
        app.route("/x", methods="POST")


def test_router_prefix_and_name(app, client):
    api = Router(prefix="/api", name="api")

    @api.get("/notes")
    def list_notes(request):
        return {"endpoint": request.endpoint}

    app.mount(api)
    assert client.get("/api/notes").json == {"endpoint": "api.list_notes"}
    assert app.url_for("api.list_notes") == "/api/notes"
    assert client.get("/notes", status=404)


def test_nested_routers_combine_prefixes_and_names(app, client):
    v1 = Router(prefix="/v1", name="v1")
    api = Router(prefix="/api", name="api")

    @v1.get("/ping")
    def ping(request):
        return "pong"

    api.mount(v1)
    app.mount(api)
    assert client.get("/api/v1/ping").text == "pong"
    assert app.url_for("api.v1.ping") == "/api/v1/ping"


def test_router_refuses_routes_after_mounting(app):
    router = Router(prefix="/r")
    app.mount(router)
    with pytest.raises(RuntimeError, match="already mounted"):
        router.add_route("/late", lambda request: "")


def test_duplicate_endpoint_names_both_handlers(app):
    @app.get("/a")
    def index(request):
        return ""

    other = Router()

    @other.get("/b")
    def index(request):  # noqa: F811 - the clash is the point
        return ""

    with pytest.raises(ValueError, match="endpoint 'index' is already taken"):
        app.mount(other)


def test_url_for_puts_extra_values_in_the_query(app):
    @app.get("/notes/<int:note_id>")
    def note(request, note_id):
        return ""

    assert app.url_for("note", note_id=7, page=2) == "/notes/7?page=2"
    with pytest.raises(BuildError):
        app.url_for("note")
    with pytest.raises(BuildError):
        app.url_for("missing")


def test_head_is_answered_from_get_without_a_body(app, client):
    @app.get("/data")
    def data(request):
        return {"a": 1}

    get, head = client.get("/data"), client.head("/data")
    assert head.status_int == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == "7"
    assert head.headers["Content-Type"] == "application/json"


def test_options_lists_allowed_methods(app, client):
    @app.route("/things", methods=["GET", "POST"])
    def things(request):
        return ""

    response = client.options("/things")
    assert response.status_int == 200
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert response.body == b""
    assert client.options("/nothing", status=404)


def test_method_not_allowed_gives_405_with_allow(app, client):
    @app.post("/submit")
    def submit(request):
        return ""

    response = client.get("/submit", status=405)
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert response.json == {
        "type": "about:blank",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": "GET is not allowed for /submit; allowed: OPTIONS, POST",
    }


def test_a_value_no_converter_takes_is_404_whatever_the_method(app, client):
    @app.get("/notes/<int:note_id>")
    def show(request, note_id):
        return {}

    @app.put("/notes/<int:note_id>")
    def update(request, note_id):
        return {}

    past_64_bits = "/notes/9223372036854775808"
    for method in ("get", "put", "delete", "post"):
        getattr(client, method)(past_64_bits, status=404)
    assert client.delete("/notes/1", status=405).headers["Allow"] == "GET, HEAD, OPTIONS, PUT"


def test_static_route_wins_over_a_converter_route(app, client):
    @app.get("/users/<name>")
    def user(request, name):
        return {"user": name}

    @app.get("/users/me")
    def me(request):
        return {"user": "(me)"}

    assert client.get("/users/me").json == {"user": "(me)"}
    assert client.get("/users/ada").json == {"user": "ada"}


def test_missing_trailing_slash_redirects(app, client):
    @app.get("/docs/")
    def docs(request):
        return "docs"

    response = client.get("/docs", status=308)
    assert response.headers["Location"].endswith("/docs/")


def test_routes_table_lists_every_route(app):
    @app.get("/")
    def index(request):
        return ""

    @app.post("/notes")
    def create(request):
        return ""

    rows = [(sorted(r.methods), r.path, r.endpoint) for r in app.routes]
    assert rows == [(["GET", "HEAD"], "/", "index"), (["POST"], "/notes", "create")]


def test_routes_added_after_first_request_are_served(app):
    client = TestClient(app)

    @app.get("/early")
    def early(request):
        return "early"

    assert client.get("/early").text == "early"

    @app.get("/late")
    def late(request):
        return "late"

    assert client.get("/late").text == "late"


def test_bad_paths_are_refused():
    app = App(secret_key="x" * 32)
    with pytest.raises(ValueError, match="must start with '/'"):
        app.add_route("nope", lambda request: "")
    with pytest.raises(ValueError, match="must start with '/'"):
        Router(prefix="api")


class _Slug(BaseConverter):
    regex = r"[a-z-]+"


class _AnySegments(BaseConverter):
    # A regex without "/" that could still span segments: werkzeug matches it within one.
    regex = r".+"


# Rules that overlap on purpose: a static segment against a variable, int against string,
# a trailing slash, a path converter, a variable first segment, a custom converter.
_RULES = [
    ("/static/", ["GET"]),
    ("/users/<int:user_id>", ["GET"]),
    ("/users/<name>", ["GET", "POST"]),
    ("/users/me", ["PUT"]),
    ("/users/<int:user_id>/posts/<int(min=1):post_id>", ["GET"]),
    ("/files/<path:path>", ["GET"]),
    ("/files/<path:path>/raw", ["GET"]),
    ("/dirs/<name>/", ["GET"]),
    ("/<lang>/about", ["GET"]),
    ("/tags/<slug:tag>", ["DELETE"]),
    ("/any/<anything:value>", ["GET"]),
    ("/v<int:version>/status", ["GET"]),
    ("/ids/<uuid:item>", ["GET"]),
    ("/prices/<float:price>", ["GET"]),
    ("/kinds/<any(cat, dog):kind>", ["GET"]),
]
_PATHS = [
    "/users/42",
    "/users/\u0663",  # an Arabic-Indic 3: a digit to the regex and to int()
    "/users/" + "9" * 5000,  # more digits than int() takes
    "/users/bob",
    "/users/me",
    "/users/-3",
    "/users/42/",
    "/users//42",
    "/users/7/posts/0",
    "/users/7/posts/3",
    "/files/a/b/c",
    "/files/a/raw",
    "/files/",
    "/dirs/x",
    "/dirs/x/",
    "/en/about",
    "/users/about",
    "/tags/a-b",
    "/tags/a1",
    "/any/a/b",
    "/any/a",
    "/v2/status",
    "/vx/status",
    "/ids/" + str(uuid.UUID(int=5)),
    "/ids/nope",
    "/prices/1.5",
    "/prices/2",
    "/kinds/cat",
    "/kinds/cow",
    "/nowhere",
    "/",
    "/users",
    "/users/",
    "/dirs",
    "/dirs/",
    "/files",
    "/en",
    "/en/about/",
    "/users/me/",
    "//users/42",
    "/tags/",
    "/kinds",
    "/static",
    "/static/",
    "/static//",
]


def _outcome(match):
    try:
        endpoint, values = match()
    except Exception as exc:
        return type(exc).__name__
    return endpoint, dict(values)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "HEAD"])
def test_routing_shortcuts_answer_as_werkzeug_does(method):
    app = App(secret_key="x" * 40)
    app.add_converter("slug", _Slug)
    app.add_converter("anything", _AnySegments)
    for number, (path, methods) in enumerate(_RULES):
        app.add_route(path, lambda request, **values: values, methods, endpoint=f"r{number}")
    table = app._table
    werkzeug = table.map.bind("localhost")
    answered_by_shortcut: list[str] = []
    found_absent: list[str] = []
    for path in _PATHS:
        environ = EnvironBuilder(path=path, method=method).get_environ()
        ours = _outcome(lambda: table.match(environ, path, method)[::2])  # noqa: B023
        theirs = _outcome(lambda: werkzeug.match(path, method))  # noqa: B023
        if theirs == "MethodNotAllowed" and all(
            _outcome(lambda: werkzeug.match(path, m)) in ("NotFound", "MethodNotAllowed")  # noqa: B023
            for m in ("GET", "POST", "PUT", "DELETE")
        ):
            theirs = "NotFound"  # werkzeug's 405 where no method's rule takes the value
        assert ours == theirs, f"{method} {path}"
        shortcut = table._dynamic.match(path, method)
        if shortcut is not None:
            assert shortcut == theirs, f"{method} {path}"
            answered_by_shortcut.append(path)
        if path not in table._static and table._surely_absent(path):
            assert theirs == "NotFound", f"{method} {path}"
            found_absent.append(path)
    assert {"/nowhere", "/en", "/kinds"} <= {*found_absent}
    if method == "GET":  # the shortcut must be taken, or this test compares werkzeug to itself
        assert {"/users/7/posts/3", "/files/a/b/c", "/en/about", "/kinds/cat"} <= {
            *answered_by_shortcut
        }


# --- a handler's signature is checked when its route is registered ----------------------------


def test_a_handler_without_the_request_parameter_is_an_error_at_registration(app):
    with pytest.raises(TypeError) as caught:

        @app.get("/")
        def index():
            return {}

    message = str(caught.value)
    assert "the handler " in message and "<locals>.index() for GET / " in message
    assert "cannot be called as index(request)" in message and "def index(request)" in message


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("/notes/<int:note_id>", "def show(request, note_id)"),  # a URL value it cannot take
        ("/notes", "def show(request)"),  # a parameter the URL does not give
    ],
)
def test_url_values_and_parameters_must_agree(app, path, wanted):
    def show(request, number):
        return {}

    with pytest.raises(TypeError, match=r"show\(request, number\) for GET " + path) as caught:
        app.add_route(path, show)
    assert wanted in str(caught.value)


def test_a_guarded_handler_is_checked_through_the_guard(app):
    from microback.security import login_required

    with pytest.raises(TypeError, match=r"index\(\) for GET /"):

        @app.get("/")
        @login_required
        def index():
            return {}


def test_handlers_of_every_callable_shape_are_accepted(app, client):
    import functools

    class Notes:
        def show(self, request, note_id):
            return {"method": note_id}

        def __call__(self, request, **values):
            return {"callable": values}

    def with_extra(request, note_id, *, extra):
        return {"partial": [note_id, extra]}

    def logged(handler):  # another library's decorator: its wrapper is taken at its word
        @functools.wraps(handler)
        def wrapper(*args, **kwargs):
            return handler(args[0], "injected", **kwargs)

        return wrapper

    @logged
    def injected(request, value, note_id):
        return {"injected": [value, note_id]}

    def anything(*args, **kwargs):
        return {"varargs": kwargs}

    app.add_route("/a/<int:note_id>", Notes().show)
    app.add_route("/b/<int:note_id>", Notes(), endpoint="b")
    app.add_route("/c/<int:note_id>", functools.partial(with_extra, extra=1), endpoint="c")
    app.add_route("/d/<int:note_id>", injected)
    app.add_route("/e/<int:note_id>", anything)
    assert client.get("/a/1").json == {"method": 1}
    assert client.get("/b/2").json == {"callable": {"note_id": 2}}
    assert client.get("/c/3").json == {"partial": [3, 1]}
    assert client.get("/d/4").json == {"injected": ["injected", 4]}
    assert client.get("/e/5").json == {"varargs": {"note_id": 5}}


def test_a_router_handler_is_checked_with_every_prefix_when_mounted(app):
    users = Router("/users/<int:user_id>")

    @users.get("/notes/<int:note_id>")
    def note(request, user_id, note_id):
        return {"ids": [user_id, note_id]}

    @users.get("/")
    def broken(request):
        return {}

    with pytest.raises(TypeError, match=r"broken\(request\) for GET /users/<int:user_id>/"):
        app.mount(users)
