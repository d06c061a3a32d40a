import concurrent.futures
import dataclasses
import datetime
import decimal
import logging
import subprocess
import sys
import time
import uuid

import pytest
from werkzeug.exceptions import Conflict
from werkzeug.test import EnvironBuilder

from microback import App, Response, abort, problem_response, redirect
from microback.testing import TestClient


def test_return_types_become_responses(app, client):
    @app.get("/dict")
    def as_dict(request):
        return {"é": 1}

    @app.get("/list")
    def as_list(request):
        return [1, 2]

    @app.get("/str")
    def as_str(request):
        return "<p>hi</p>"

    @app.get("/bytes")
    def as_bytes(request):
        return b"\x00\x01"

    @app.get("/response")
    def as_response(request):
        return Response("plain", mimetype="text/plain", status=202)

    response = client.get("/dict")
    assert response.content_type == "application/json"
    assert response.body == '{"é":1}'.encode()
    assert client.get("/list").json == [1, 2]
    html = client.get("/str")
    assert html.headers["Content-Type"] == "text/html; charset=utf-8"
    assert html.text == "<p>hi</p>"
    raw = client.get("/bytes")
    assert raw.content_type == "application/octet-stream"
    assert raw.body == b"\x00\x01"
    plain = client.get("/response", status=202)
    assert plain.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_tuples_set_status_and_headers(app, client):
    @app.post("/created")
    def created(request):
        return {"id": 1}, 201

    @app.get("/tagged")
    def tagged(request):
        return "ok", 200, {"X-Tag": "a"}

    @app.get("/headers-only")
    def headers_only(request):
        return "ok", [("X-Tag", "b")]

    response = client.post("/created", status=201)
    assert response.json == {"id": 1}
    assert client.get("/tagged").headers["X-Tag"] == "a"
    assert client.get("/headers-only").headers["X-Tag"] == "b"


def test_json_understands_common_types(app, client):
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    when = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=datetime.timezone.utc)
    ident = uuid.UUID(int=1)

    @app.get("/")
    def index(request):
        return {
            "when": when,
            "day": when.date(),
            "id": ident,
            "price": decimal.Decimal("9.99"),
            "point": Point(1, 2),
            "tags": {"b", "a"},
        }

    assert client.get("/").json == {
        "when": "2026-11-25T10:00:00+00:00",
        "day": "2026-11-25",
        "id": str(ident),
        "price": "9.99",
        "point": {"x": 1, "y": 2},
        "tags": ["a", "b"],
    }


def _containing_itself() -> list:
    value: list = []
    value.append(value)
    return value


@pytest.mark.parametrize(
    ("make_value", "expected"),
    [
        (lambda: {"ratio": float("nan")}, "Out of range float values are not JSON compliant"),
        (_containing_itself, "the value contains itself, or is nested too deeply for JSON"),
    ],
)
def test_values_json_cannot_hold_are_a_logged_500(app, client, caplog, make_value, expected):
    value = make_value()

    @app.get("/")
    def index(request):
        return value

    with caplog.at_level(logging.ERROR, logger="microback.app"):
        response = client.get("/", status=500)

    assert "NaN" not in response.text and "contains itself" not in response.text
    assert caplog.records[-1].exc_info[0] is ValueError
    assert str(caplog.records[-1].exc_info[1]) == expected


def test_json_of_one_shared_value_from_many_threads_at_once(app, client):
    # Encoding switches threads inside the encoder here (sorting the set calls __lt__, which
    # sleeps); a cycle check shared between calls would see the other thread's value as a cycle.
    class SlowInt(int):
        def __lt__(self, other):
            time.sleep(0.001)
            return int(self) < int(other)

    shared = {"tags": {SlowInt(2), SlowInt(1), SlowInt(3)}}

    @app.get("/")
    def index(request):
        return shared

    def fetch(_):
        return [client.get("/").json for _ in range(10)]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = [answer for batch in pool.map(fetch, range(8)) for answer in batch]

    assert answers == [{"tags": [1, 2, 3]}] * 80


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "returned NoneType"),
        (42, "returned int"),
        (("a", 200, {}, "extra"), "tuple of 4 items"),
        (("a", "201 Created", {}), "returned status '201 Created'"),
        (("a", 1000), "returned status 1000"),
        (("a", True), "returned status True"),
    ],
)
def test_bad_return_values_are_a_logged_type_error(app, client, caplog, value, expected):
    @app.get("/")
    def broken_handler(request):
        return value

    with caplog.at_level(logging.ERROR, logger="microback.app"):
        response = client.get("/", status=500)
    assert response.json == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": response.json["detail"],
    }
    assert "TypeError" not in response.text
    logged = caplog.records[-1]
    assert logged.exc_info[0] is TypeError
    message = str(logged.exc_info[1])
    assert "test_app" in message and "broken_handler" in message
    assert expected in message


def test_unexpected_exception_is_logged_and_reveals_nothing(app, client, caplog):
    @app.get("/boom")
    def boom(request):
        raise RuntimeError("database password is hunter2")

    with caplog.at_level(logging.ERROR, logger="microback.app"):
        response = client.get("/boom?token=secret-token", status=500)
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert response.json["status"] == 500
    record = caplog.records[-1]
    assert record.getMessage() == "unhandled exception in GET /boom"
    assert "secret-token" not in caplog.text
    assert record.exc_info[0] is RuntimeError
    html = client.get("/boom", status=500, headers={"Accept": "text/html"})
    assert "hunter2" not in html.text
    assert "<h1>Internal Server Error</h1>" in html.text


def test_debug_mode_shows_the_traceback():
    app = App(debug=True, secret_key="x" * 32)

    @app.get("/boom")
    def boom(request):
        raise RuntimeError("visible in debug")

    response = TestClient(app).get("/boom", status=500)
    assert "RuntimeError: visible in debug" in response.json["traceback"]
    assert "Traceback" in response.json["traceback"]


def test_abort_with_message_and_headers(app, client):
    @app.get("/limited")
    def limited(request):
        abort(429, "slow down", headers={"Retry-After": "30"})

    response = client.get("/limited", status=429)
    assert response.json == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "slow down",
    }
    assert response.headers["Retry-After"] == "30"


def test_abort_refuses_non_error_statuses():
    with pytest.raises(ValueError, match="use redirect"):
        abort(302)


def test_redirect(app, client):
    @app.post("/form")
    def form(request):
        return redirect("/done", 303)

    response = client.post("/form", status=303)
    assert response.headers["Location"].endswith("/done")


def test_errors_are_html_for_browsers_and_json_for_api_clients(app, client):
    @app.get("/gone")
    def gone(request):
        abort(404, "note <b>7</b> not found")

    api = client.get("/gone", status=404)
    assert api.json == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "note <b>7</b> not found",
    }
    browser = client.get(
        "/gone", status=404, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )
    assert browser.content_type == "text/html"
    assert "note &lt;b&gt;7&lt;/b&gt; not found" in browser.text
    assert "<b>7</b>" not in browser.text
    assert client.get("/gone", status=404, headers={"Accept": "*/*"}).json["status"]
    assert client.get("/nowhere", status=404).json == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "nothing here: no route matches /nowhere",
    }
    assert api.content_type == "application/problem+json"
    # A client that asks for problem documents by name gets one, not the page.
    asked = {"Accept": "application/problem+json, text/html;q=0.9"}
    assert client.get("/gone", status=404, headers=asked).json["status"] == 404


def test_an_error_carries_the_request_id_the_server_gave(app, client):
    @app.get("/gone")
    def gone(request):
        abort(410, "moved away")

    response = client.get("/gone", status=410, extra_environ={"microback.request_id": "r-42"})
    assert response.json == {
        "type": "about:blank",
        "title": "Gone",
        "status": 410,
        "detail": "moved away",
        "request_id": "r-42",
    }


def test_problem_response_builds_a_problem_document_with_extension_members(app, client):
    @app.errorhandler(409)
    def conflict(request, error):
        return problem_response(409, error.description, instance=request.path)

    @app.put("/items/<int:item_id>")
    def replace(request, item_id):
        abort(409, f"item {item_id} changed; reload it")

    response = client.put("/items/3", status=409)
    assert response.content_type == "application/problem+json"
    assert response.json == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "item 3 changed; reload it",
        "instance": "/items/3",
    }


def test_errorhandler_by_code_and_by_exception_class(app, client):
    class OutOfStock(Exception):
        pass

    @app.errorhandler(404)
    def not_found(request, error):
        return {"missing": request.path}, 404

    @app.errorhandler(OutOfStock)
    def out_of_stock(request, error):
        return {"problem": str(error)}, 409

    @app.errorhandler(Conflict)
    def conflict(request, error):
        return "conflict page", 409

    @app.get("/buy")
    def buy(request):
        raise OutOfStock("no more widgets")

    @app.get("/clash")
    def clash(request):
        abort(409)

    assert client.get("/absent", status=404).json == {"missing": "/absent"}
    assert client.get("/buy", status=409).json == {"problem": "no more widgets"}
    assert client.get("/clash", status=409).text == "conflict page"


def test_errorhandler_for_500_gets_unexpected_exceptions(app, client):
    @app.errorhandler(500)
    def server_error(request, error):
        return {"sorry": type(error.original_exception).__name__}, 500

    @app.get("/boom")
    def boom(request):
        raise KeyError("x")

    assert client.get("/boom", status=500).json == {"sorry": "KeyError"}


def test_a_failing_error_handler_is_a_plain_500(app, client, caplog):
    @app.errorhandler(404)
    def broken(request, error):
        raise RuntimeError("handler bug")

    with caplog.at_level(logging.ERROR, logger="microback.app"):
        response = client.get("/absent", status=500)
    assert "handler bug" not in response.text
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


def test_errorhandler_takes_only_error_statuses(app):
    with pytest.raises(ValueError, match="400 to 599"):
        app.errorhandler(200)


def test_hooks_run_in_order_and_teardown_sees_the_error(app, client):
    calls = []

    @app.before_request
    def before(request):
        calls.append(("before", request.endpoint))

    @app.after_request
    def after(request, response):
        calls.append(("after", response.status_code))
        response.headers["X-After"] = "yes"

    @app.teardown
    def teardown(request, error):
        calls.append(("teardown", type(error).__name__ if error else None))

    @app.get("/ok")
    def ok(request):
        calls.append(("handler", None))
        return "ok"

    @app.get("/fail")
    def fail(request):
        raise ValueError("nope")

    assert client.get("/ok").headers["X-After"] == "yes"
    assert calls == [("before", "ok"), ("handler", None), ("after", 200), ("teardown", None)]
    calls.clear()
    assert client.get("/fail", status=500).headers["X-After"] == "yes"
    assert calls == [("before", "fail"), ("after", 500), ("teardown", "ValueError")]
    calls.clear()
    client.get("/missing", status=404)
    assert calls == [("before", None), ("after", 404), ("teardown", "NotFound")]


def test_before_request_can_answer_early(app, client):
    @app.before_request
    def maintenance(request):
        if request.args.get("closed"):
            return {"closed": True}, 503

    @app.get("/")
    def index(request):
        return "open"

    assert client.get("/").text == "open"
    assert client.get("/?closed=1", status=503).json == {"closed": True}


def test_after_request_can_replace_the_response(app, client):
    @app.after_request
    def replace(request, response):
        return Response("replaced", status=200)

    assert client.get("/nothing-here").text == "replaced"


def test_failing_after_hook_is_a_500_and_teardown_still_runs(app, client, caplog):
    seen = []

    @app.after_request
    def broken(request, response):
        raise RuntimeError("after hook bug")

    @app.teardown
    def teardown(request, error):
        seen.append(error)

    @app.get("/")
    def index(request):
        return "ok"

    with caplog.at_level(logging.ERROR, logger="microback.app"):
        response = client.get("/", status=500)
    assert "after hook bug" not in response.text
    assert isinstance(seen[0], RuntimeError)


def test_failing_teardown_is_logged_and_others_still_run(app, client, caplog):
    seen = []

    @app.teardown
    def broken(request, error):
        raise RuntimeError("teardown bug")

    @app.teardown
    def second(request, error):
        seen.append("second")

    @app.get("/")
    def index(request):
        return "ok"

    with caplog.at_level(logging.ERROR, logger="microback.app"):
        assert client.get("/").text == "ok"
    assert seen == ["second"]
    assert "teardown hook" in caplog.text and "broken" in caplog.text


def test_body_over_the_limit_is_413_naming_the_limit(client):
    app = App(secret_key="x" * 32, max_content_length=1024)
    received = []

    @app.post("/upload")
    def upload(request):
        received.append(request.get_data())
        return "stored"

    client = TestClient(app)
    assert client.post("/upload", b"x" * 1024).text == "stored"
    response = client.post("/upload", b"x" * 1025, status=413)
    assert response.json["detail"] == (
        "the request body is 1025 bytes; the limit is 1 KiB (setting max_content_length)"
    )
    assert received == [b"x" * 1024]


def test_default_body_limit_is_one_mebibyte(app, client):
    @app.post("/echo")
    def echo(request):
        return {"size": len(request.get_data())}

    assert client.post("/echo", b"x" * (1024 * 1024)).json == {"size": 1024 * 1024}
    message = client.post("/echo", b"x" * (1024 * 1024 + 1), status=413).json["detail"]
    assert "the limit is 1 MiB" in message


def test_form_limits_are_kept():
    app = App(secret_key="x" * 32, max_form_parts=3)

    @app.post("/form")
    def form(request):
        return dict(request.form)

    client = TestClient(app)
    fields = [("a", "1"), ("b", "2")]
    assert client.post("/form", fields, upload_files=[("f", "f.txt", b"x")]).json == {
        "a": "1",
        "b": "2",
    }
    many = [(f"k{i}", "v") for i in range(5)]
    response = client.post("/form", many, upload_files=[("f", "f.txt", b"x")], status=413)
    assert "3 form parts" in response.json["detail"]


def test_request_knows_its_app_and_route(app, client):
    @app.get("/who/<name>")
    def who(request, name):
        return {"app": request.app is app, "endpoint": request.endpoint, **request.view_args}

    assert client.get("/who/ada").json == {"app": True, "endpoint": "who", "name": "ada"}


def test_request_properties_are_lazy_and_cached(app, client):
    loads = []

    def load_greeting(request):
        loads.append(request.path)
        return f"hello {request.args.get('name', 'you')}"

    app.add_request_property("greeting", load_greeting)

    @app.get("/twice")
    def twice(request):
        return {"first": request.greeting, "second": request.greeting}

    @app.get("/never")
    def never(request):
        return {}

    assert client.get("/twice?name=ada").json == {"first": "hello ada", "second": "hello ada"}
    client.get("/never")
    assert loads == ["/twice"]
    with pytest.raises(ValueError, match="already have an attribute 'greeting'"):
        app.add_request_property("greeting", load_greeting)
    with pytest.raises(ValueError, match="'json'"):
        app.add_request_property("json", load_greeting)


def test_wsgi_middleware_wraps_wsgi_app(app, client):
    def add_header(wsgi_app):
        def middleware(environ, start_response):
            def start(status, headers, exc_info=None):
                return start_response(status, [*headers, ("X-Middleware", "1")], exc_info)

            return wsgi_app(environ, start)

        return middleware

    @app.get("/")
    def index(request):
        return "ok"

    app.wsgi_app = add_header(app.wsgi_app)
    response = client.get("/")
    assert response.headers["X-Middleware"] == "1"
    assert app.url_for("index") == "/"  # the app object is still the app


def _chunked_post(app, body: bytes):
    """POST ``body`` as a server gives a chunked upload: no Content-Length, input terminated."""
    from wsgiref.validate import validator

    environ = EnvironBuilder(path="/upload", method="POST", data=body).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True
    statuses = []
    app_iter = validator(app)(environ, lambda status, headers, exc=None: statuses.append(status))
    payload = b"".join(app_iter)
    app_iter.close()
    return statuses[0], payload


def test_chunked_body_over_the_limit_is_413_not_truncated():
    import json

    app = App(secret_key="x" * 32, max_content_length=10)

    @app.post("/upload")
    def upload(request):
        return {"received": len(request.get_data())}

    for size in (0, 1, 9, 10):  # the end of a shorter body is its end, not a disconnect
        assert _chunked_post(app, b"x" * size) == ("200 OK", b'{"received":%d}' % size)
    status, payload = _chunked_post(app, b"x" * 100)
    assert status == "413 REQUEST ENTITY TOO LARGE"
    assert json.loads(payload)["detail"] == (
        "the request body (sent without Content-Length) is larger than the limit of 10 bytes "
        "(setting max_content_length)"
    )


def test_after_hooks_run_when_an_error_handler_fails(app, client, caplog):
    seen = []

    @app.errorhandler(404)
    def broken(request, error):
        raise RuntimeError("handler bug")

    @app.after_request
    def after(request, response):
        seen.append(response.status_code)

    @app.teardown
    def teardown(request, error):
        seen.append(type(error).__name__)

    with caplog.at_level(logging.ERROR, logger="microback.app"):
        client.get("/missing", status=500)
    assert seen == [500, "NotFound"]


def test_error_handlers_default_to_the_error_status(app, client):
    class Oops(Exception):
        pass

    @app.errorhandler(404)
    def not_found(request, error):
        return {"missing": True}

    @app.errorhandler(Oops)
    def oops(request, error):
        return "oops page"

    @app.get("/oops")
    def raise_oops(request):
        raise Oops

    assert client.get("/missing", status=404).json == {"missing": True}
    assert client.get("/oops", status=500).text == "oops page"


def test_automatic_options_runs_before_request_hooks(app, client):
    @app.before_request
    def gate(request):
        if request.headers.get("X-Blocked"):
            return "blocked", 403

    @app.get("/thing")
    def thing(request):
        return ""

    assert client.options("/thing").headers["Allow"] == "GET, HEAD, OPTIONS"
    assert client.options("/thing", headers={"X-Blocked": "1"}, status=403).text == "blocked"


GARBAGE_CHECK = """
import gc, sys
from werkzeug.test import EnvironBuilder
from microback import App, abort
from microback.security import CookieSessions

app = App(secret_key="k" * 32)
CookieSessions(app)

@app.get("/")
def index(request):
    return {"ok": True}

@app.get("/forbidden")
def forbidden(request):
    abort(403, "not yours")

@app.get("/session")
def visit(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return {"visits": request.session["visits"]}

def call():
    environ = EnvironBuilder(path=sys.argv[1]).get_environ()
    list(app(environ, lambda status, headers, exc_info=None: None))

call()
gc.collect()
gc.disable()
for _ in range(10):
    call()
print(gc.collect())
"""


@pytest.mark.parametrize("path", ["/", "/nowhere", "/forbidden", "/session"])
def test_a_request_leaves_nothing_for_the_garbage_collector(path):
    # Cycles are freed only by a collection, which then pauses every request in the process.
    # A fresh interpreter: threads left by other tests allocate too, and gc.collect() counts
    # their garbage with ours.
    done = subprocess.run(
        [sys.executable, "-c", GARBAGE_CHECK, path], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "0", done.stdout
