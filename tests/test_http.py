import json

import pytest

from microback import Response
from microback.http import add_vary


@pytest.fixture
def echo_app(app):
    @app.post("/echo")
    def echo(request):
        return {"received": request.json}

    return app


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            "{bad",
            "application/json",
            "malformed JSON in the request body: Expecting property "
            "name enclosed in double quotes (line 1, column 2)",
        ),
        ("", "application/json", "the request body is empty; expected JSON"),
        (
            '{"a": 1}',
            "text/plain",
            "expected a JSON body with Content-Type: application/json, got 'text/plain'",
        ),
        (
            '{"a": 1}',
            None,
            "expected a JSON body with Content-Type: application/json, got no Content-Type",
        ),
        (
            '{"a": NaN}',
            "application/json",
            "malformed JSON in the request body: NaN is not valid JSON",
        ),
        (
            "[" * 100_000,
            "application/json",
            "malformed JSON in the request body: JSON nested too deeply",
        ),
        (b"\xff\xfe{}", "application/json", "the JSON request body is not valid UTF-8"),
    ],
)
def test_bad_json_is_a_400_that_says_what_is_wrong(echo_app, client, body, content_type, message):
    headers = {"Content-Type": content_type} if content_type else {}
    if content_type is None:
        response = client.request("/echo", method="POST", body=body.encode(), status=400)
    else:
        response = client.post("/echo", body, headers=headers, status=400)
    assert response.json == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": message,
    }


def test_good_json_is_parsed(echo_app, client):
    response = client.post_json("/echo", {"text": "héllo", "n": [1, 2]})
    assert response.json == {"received": {"text": "héllo", "n": [1, 2]}}
    vendor = client.post(
        "/echo", json.dumps([1]), headers={"Content-Type": "application/vnd.api+json"}
    )
    assert vendor.json == {"received": [1]}


TOO_LARGE = (
    "malformed JSON in the request body: the number '1e999' is too large for a 64-bit float"
)
SURROGATE = "a string holds a lone UTF-16 surrogate"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1e999", TOO_LARGE),
        ('{"a": [1, {"b": 1e999}]}', TOO_LARGE),
        ("-1e999", TOO_LARGE.replace("'1e999'", "'-1e999'")),
        ('{"a": -1E+999}', TOO_LARGE.replace("'1e999'", "'-1E+999'")),
        (
            '"\\ud800"',
            f"malformed JSON in the request body: {SURROGATE} (\\ud800), not a character",
        ),
        (
            '"\\udfff"',
            f"malformed JSON in the request body: {SURROGATE} (\\udfff), not a character",
        ),
        ('{"a": ["ok", {"b": "x\\uDBFFy"}]}', f"malformed JSON in the request body: {SURROGATE}"),
        ('{"\\udc00": 1}', f"malformed JSON in the request body: {SURROGATE}"),
        ('["\\udfff\\ud800"]', f"malformed JSON in the request body: {SURROGATE}"),
    ],
)
def test_json_that_python_could_not_send_back_is_a_400(echo_app, client, body, message):
    # An infinite float or a lone surrogate parsed fine and then failed on the way out: a 500.
    response = client.post("/echo", body, headers={"Content-Type": "application/json"}, status=400)
    assert response.json["detail"].startswith(message)


def test_json_keeps_escaped_pairs_tiny_numbers_and_escaped_backslashes(echo_app, client):
    body = '["\\ud83d\\ude00", 1e-999, 1.5e308, "\\\\ud800", "\\u00e9"]'
    response = client.post("/echo", body, headers={"Content-Type": "application/json"})
    assert response.json == {"received": ["\U0001f600", 0.0, 1.5e308, "\\ud800", "é"]}


def test_get_float_rejects_what_does_not_fit_a_float(app, client):
    @app.post("/score")
    def score(request):
        return {"score": request.json_object.get_float("score")}

    response = client.post(
        "/score",
        '{"score": 1' + "0" * 400 + "}",
        status=400,
        headers={"Content-Type": "application/json"},
    )
    assert response.json["detail"] == (
        "the 'score' field must be a number, got a number too large"
    )
    assert client.post(
        "/score", '{"score": 1e999}', status=400, headers={"Content-Type": "application/json"}
    )
    assert client.get("/score", status=405)


@pytest.fixture
def params_app(app):
    @app.get("/int")
    def get_int(request):
        return {"limit": request.args.get_int("limit", 20, min=1, max=100)}

    @app.get("/required")
    def required(request):
        return {"page": request.args.get_int("page")}

    @app.get("/float")
    def get_float(request):
        return {"ratio": request.args.get_float("ratio", 0.5, min=0, max=1)}

    @app.get("/bool")
    def get_bool(request):
        return {"flag": request.args.get_bool("flag", False)}

    @app.get("/str")
    def get_str(request):
        return {"order": request.args.get_str("order", "asc", choices=["asc", "desc"])}

    @app.get("/short")
    def short(request):
        return {"q": request.args.get_str("q", max_length=5)}

    @app.post("/form")
    def form(request):
        return {"qty": request.form.get_int("qty", min=1)}

    return app


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/int", {"limit": 20}),
        ("/int?limit=", {"limit": 20}),
        ("/bool?flag=", {"flag": False}),
        ("/int?limit=1", {"limit": 1}),
        ("/int?limit=100", {"limit": 100}),
        ("/required?page=-3", {"page": -3}),
        ("/float?ratio=0.25", {"ratio": 0.25}),
        ("/bool?flag=yes", {"flag": True}),
        ("/bool?flag=0", {"flag": False}),
        ("/str?order=desc", {"order": "desc"}),
        ("/short?q=abc", {"q": "abc"}),
    ],
)
def test_typed_getters_read_good_values(params_app, client, url, expected):
    assert client.get(url).json == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/int?limit=0", "the 'limit' parameter must be an integer from 1 to 100, got '0'"),
        ("/int?limit=101", "the 'limit' parameter must be an integer from 1 to 100, got '101'"),
        ("/int?limit=abc", "the 'limit' parameter must be an integer from 1 to 100, got 'abc'"),
        ("/required?page=", "the 'page' parameter is required"),
        ("/int?limit=1_0", "the 'limit' parameter must be an integer from 1 to 100, got '1_0'"),
        ("/int?limit=" + "9" * 5000, "the 'limit' parameter must be an integer from 1 to 100"),
        ("/required", "the 'page' parameter is required"),
        ("/float?ratio=nan", "the 'ratio' parameter must be a number from 0 to 1, got 'nan'"),
        ("/float?ratio=2", "the 'ratio' parameter must be a number from 0 to 1, got '2'"),
        ("/bool?flag=maybe", "the 'flag' parameter must be true or false, got 'maybe'"),
        ("/str?order=up", "the 'order' parameter must be one of 'asc', 'desc', got 'up'"),
        ("/short?q=toolong", "the 'q' parameter must be at most 5 characters long"),
    ],
)
def test_typed_getters_answer_400_naming_the_parameter(params_app, client, url, message):
    error = client.get(url, status=400).json
    assert error["status"] == 400
    assert error["detail"].startswith(message)


def test_integer_parameters_take_any_64_bit_value_and_name_the_range_beyond(params_app, client):
    # Ids given out in JSON (up to 2**63 - 1, 19 digits) come back in query strings; past
    # 64 bits the message says which range the value left, not only "an integer".
    for value in (2**63 - 1, -(2**63), 10**18):
        assert client.get(f"/required?page={value}").json == {"page": value}
    for value in (2**63, -(2**63) - 1, 10**30):
        message = client.get(f"/required?page={value}", status=400).json["detail"]
        assert message == (
            "the 'page' parameter must be an integer from -9223372036854775808 to "
            f"9223372036854775807, got '{value}'"
        )
    message = client.post("/form", {"qty": str(2**63)}, status=400).json["detail"]
    assert message.startswith("the 'qty' parameter must be an integer from 1 to 92233720368")


def test_long_bad_values_are_shortened_in_the_message(params_app, client):
    message = client.get("/int?limit=" + "x" * 500, status=400).json["detail"]
    assert len(message) < 150


def test_typed_getters_work_on_forms(params_app, client):
    assert client.post("/form", {"qty": "3"}).json == {"qty": 3}
    message = client.post("/form", {"qty": "0"}, status=400).json["detail"]
    assert message == "the 'qty' parameter must be an integer of at least 1, got '0'"


def test_a_missing_json_field_is_a_400_naming_it(app, client):
    @app.post("/notes")
    def create(request):
        data = request.json
        return {"text": data["text"], "tags": [tag["name"] for tag in data.get("tags", [])]}

    assert client.post_json("/notes", {"text": "milk"}).json == {"text": "milk", "tags": []}
    response = client.post_json("/notes", {"title": "no text"}, status=400)
    assert response.json["detail"] == "the JSON body has no 'text' field"
    nested = client.post_json("/notes", {"text": "x", "tags": [{"label": "a"}]}, status=400)
    assert nested.json["detail"] == "the JSON body has no 'name' field"


def test_json_objects_are_still_plain_dicts_to_handlers(app, client):
    @app.post("/echo")
    def echo(request):
        data = request.json
        assert isinstance(data, dict) and data.get("missing") is None and "missing" not in data
        return data

    assert client.post_json("/echo", {"a": {"b": 1}}).json == {"a": {"b": 1}}


@pytest.fixture
def profile_app(app):
    @app.post("/profile")
    def profile(request):
        data = request.json_object
        return {
            "name": data.get_str("name", max_length=20),
            "role": data.get_str("role", "member", choices=["member", "admin"]),
            "age": data.get_int("age", min=0, max=150),
            "score": data.get_float("score", 0.0, min=0),
            "public": data.get_bool("public", False),
            "tags": data.get_list("tags", []),
            "address": data.get_object("address", {}),
        }

    return app


def test_typed_json_getters_read_good_values(profile_app, client):
    body = {"name": "Ada", "age": 36, "score": 2, "public": True, "address": {"city": "L"}}
    assert client.post_json("/profile", body).json == {
        "name": "Ada",
        "role": "member",
        "age": 36,
        "score": 2.0,
        "public": True,
        "tags": [],
        "address": {"city": "L"},
    }
    with_null = client.post_json("/profile", {"name": "Ada", "age": 1, "role": None})
    assert with_null.json["role"] == "member"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"age": 1}, "the JSON body has no 'name' field"),
        ({"name": 5, "age": 1}, "the 'name' field must be a string, got 5"),
        ({"name": "x" * 21, "age": 1}, "the 'name' field must be at most 20 characters long"),
        (
            {"name": "a", "age": 1, "role": "root"},
            "the 'role' field must be one of 'member', 'admin', got 'root'",
        ),
        ({"name": "a", "age": 200}, "the 'age' field must be an integer from 0 to 150, got 200"),
        ({"name": "a", "age": 1.5}, "the 'age' field must be an integer from 0 to 150, got 1.5"),
        ({"name": "a", "age": True}, "the 'age' field must be an integer from 0 to 150, got true"),
        (
            {"name": "a", "age": "36"},
            "the 'age' field must be an integer from 0 to 150, got a string",
        ),
        ({"name": "a", "age": None}, "the JSON body has no 'age' field"),
        (
            {"name": "a", "age": 1, "score": -1},
            "the 'score' field must be a number of at least 0, got -1",
        ),
        (
            {"name": "a", "age": 1, "public": "yes"},
            "the 'public' field must be true or false, got a string",
        ),
        ({"name": "a", "age": 1, "tags": "a,b"}, "the 'tags' field must be a list, got a string"),
        (
            {"name": "a", "age": 1, "address": []},
            "the 'address' field must be an object, got a list",
        ),
    ],
)
def test_typed_json_getters_answer_400_naming_the_field(profile_app, client, body, message):
    assert client.post_json("/profile", body, status=400).json["detail"] == message


@pytest.mark.parametrize(("body", "kind"), [([1, 2], "a list"), ("text", "a string"), (3, "3")])
def test_json_object_must_be_an_object(profile_app, client, body, kind):
    response = client.post_json("/profile", body, status=400)
    assert response.json["detail"] == f"the JSON body must be an object, got {kind}"


@pytest.mark.parametrize(
    ("body", "status", "content_type"),
    [
        (b'{"a":1}', 200, "application/json"),
        ("<p>héllo</p>".encode(), 201, "text/html; charset=utf-8"),
        (b"", 404, "application/octet-stream"),
        (b"x", 599, "text/plain"),
    ],
)
def test_a_buffered_response_is_the_same_as_a_constructed_one(body, status, content_type):
    # Response.buffered fills werkzeug's attributes itself; a werkzeug upgrade that renames
    # them must fail here, not in production.
    from werkzeug.test import run_wsgi_app
    from werkzeug.wrappers import Response as WerkzeugResponse

    from microback.http import Response

    fast = Response.buffered(body, status, content_type, [("X-Given", "at build time")])
    slow = WerkzeugResponse(
        body, status, [("X-Given", "at build time")], content_type=content_type
    )
    assert (fast.status, fast.status_code) == (slow.status, slow.status_code)
    assert sorted(fast.headers) == sorted(slow.headers)  # the order given headers land in differs
    assert fast.get_data() == slow.get_data()
    fast.headers["X-Later"] = "set by an after_request hook"
    fast.set_data(b"changed")
    environ = {"REQUEST_METHOD": "GET", "SERVER_NAME": "localhost", "SERVER_PORT": "80"}
    app_iter, status_line, headers = run_wsgi_app(fast, environ)
    assert status_line == slow.status
    assert headers["Content-Length"] == "7"
    assert headers["X-Later"] == "set by an after_request hook"
    assert b"".join(app_iter) == b"changed"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("<p>hi</p>",), {}),
        ((b"plain",), {"content_type": "text/plain"}),
        (("héllo", 201), {"mimetype": "text/plain"}),
        (("{}",), {"mimetype": "application/json"}),
        ((b"x", 418), {}),
    ],
)
def test_the_short_constructor_makes_what_werkzeugs_makes(args, kwargs):
    from werkzeug.wrappers import Response as WerkzeugResponse

    from microback.http import Response

    class Reference(WerkzeugResponse):
        default_mimetype = "text/html"

    ours, theirs = Response(*args, **kwargs), Reference(*args, **kwargs)
    assert (ours.status, ours.status_code) == (theirs.status, theirs.status_code)
    assert list(ours.headers) == list(theirs.headers)
    assert ours.get_data() == theirs.get_data()
    assert ours.direct_passthrough is False and ours._on_close == []


@pytest.mark.parametrize(
    "environ",
    [
        {"PATH_INFO": "/notes/1", "QUERY_STRING": "a=1&b=%C3%A9"},
        {"PATH_INFO": "/caf\xc3\xa9", "SCRIPT_NAME": "/app/", "REQUEST_METHOD": "post"},
        {"PATH_INFO": "//double", "HTTP_HOST": "example.com:8080", "wsgi.url_scheme": "https"},
        {"PATH_INFO": "", "SERVER_NAME": "/run/app.sock", "SERVER_PORT": ""},
        {"PATH_INFO": "/bad\xff", "REMOTE_ADDR": "10.0.0.1", "HTTP_X_TEST": "yes"},
        {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "12"},
        {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "-3"},
        {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "12", "HTTP_TRANSFER_ENCODING": "chunked"},
        {"HTTP_COOKIE": "theme=dark; lang=en; session=eyJ2IjoxfQ.aw_RbQ.U6CFNvr-M0EB7v"},
        {"HTTP_COOKIE": 'a="quo\\"ted\\054"; a=2; ;=x; b; c=caf\xc3\xa9;;d = e '},
        {"HTTP_COOKIE": ""},
    ],
)
def test_requests_read_the_environ_as_werkzeug_does(environ):
    # Request builds some attributes lazily; each must equal what werkzeug's constructor makes.
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request as WerkzeugRequest

    from microback.http import Request

    base = EnvironBuilder().get_environ()
    ours, theirs = Request({**base, **environ}), WerkzeugRequest({**base, **environ})
    for name in (
        "method", "scheme", "server", "root_path", "path", "query_string", "remote_addr",
        "url", "host", "full_path", "args", "content_length",
    ):  # fmt: skip
        assert getattr(ours, name) == getattr(theirs, name), name
    assert list(ours.headers) == list(theirs.headers)
    assert type(ours.cookies) is type(theirs.cookies)
    assert list(ours.cookies.items(multi=True)) == list(theirs.cookies.items(multi=True))
    assert ours.environ["werkzeug.request"] is ours


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "Cookie"),
        ("Accept-Encoding", "Accept-Encoding, Cookie"),
        ("accept-encoding, cookie", "accept-encoding, cookie"),  # listed already, in any case
        ("*", "*"),  # varies on everything already
    ],
)
def test_add_vary_lists_each_name_once(app, client, before, after):
    @app.get("/")
    def index(request):
        response = Response(b"ok")
        if before is not None:
            response.headers["Vary"] = before
        add_vary(response, "Cookie")
        add_vary(response, "COOKIE")
        return response

    assert client.get("/").headers.getall("Vary") == [after]


def test_request_user_and_session_are_typed_attributes_that_extensions_fill(app):
    # Typed for mypy (no "type: ignore" where they are read), but declared only: an app
    # without the security extensions has neither, and the extensions can still add them.
    from microback import Request

    assert Request.__annotations__["session"] == "SessionState"
    assert Request.__annotations__["user"] == "Any"
    assert not hasattr(app.request_class, "user")
    assert not hasattr(app.request_class, "session")
    app.add_request_property("user", lambda request: "someone")

    @app.get("/")
    def index(request):
        return {"user": request.user}

    from microback.testing import TestClient

    assert TestClient(app).get("/").json == {"user": "someone"}


@pytest.fixture
def body_app(app):
    @app.post("/body")
    def body(request):
        data = request.get_data()
        return {
            "size": len(data),
            "again": request.get_data() == data,
            "text": request.get_data(as_text=True)[:5],
            "stream_after": request.stream.read().decode(),
            "form": dict(request.form),
        }

    return app


def test_a_body_is_read_whole_once_and_kept_for_every_reader(body_app, client):
    answer = client.post("/body", "a=1&b=%C3%A9", content_type="application/x-www-form-urlencoded")
    assert answer.json == {
        "size": 12,
        "again": True,
        "text": "a=1&b",
        "stream_after": "",  # read, as werkzeug's own stream is after get_data
        "form": {"a": "1", "b": "é"},  # form parsing finds the kept body
    }


def test_a_body_shorter_than_its_content_length_is_a_400_not_a_short_read(body_app):
    import io

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/body",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "CONTENT_TYPE": "application/octet-stream",
        "CONTENT_LENGTH": "10",
        "wsgi.input": io.BytesIO(b"12345"),
        "wsgi.errors": io.StringIO(),
    }
    statuses = []
    body = b"".join(body_app(environ, lambda status, headers, *_: statuses.append(status)))
    assert statuses == ["400 BAD REQUEST"], body


def test_a_body_over_max_content_length_is_a_413_before_it_is_read():
    from microback import App
    from microback.testing import TestClient

    app = App(secret_key="k" * 32, max_content_length=8)

    @app.post("/body")
    def body(request):
        return {"size": len(request.get_data())}

    client = TestClient(app)
    refused = client.post("/body", "x" * 9, content_type="text/plain", status=413)
    assert "max_content_length" in refused.text
    assert client.post("/body", "x" * 8, content_type="text/plain").json == {"size": 8}
