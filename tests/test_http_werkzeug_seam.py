"""Pins what microback/http/_werkzeug.py relies on in werkzeug's internals, one test per name.

A werkzeug release that changes one of them fails the test named after it; fix the seam
there, then raise the version cap in pyproject.toml (``.ci/newest`` runs these first).
"""

from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from microback.http import _werkzeug as seam


def _environ(**overrides):
    environ = EnvironBuilder(path="/", base_url="http://example.com:8080/").get_environ()
    environ.update(overrides)
    return environ


def test_decode_wsgi_path_is_werkzeugs_path_decoding():
    # PATH_INFO holds the UTF-8 bytes as latin-1 characters (PEP 3333); werkzeug decodes them,
    # and bytes that are not UTF-8 are kept as replacement characters, not an error.
    for raw in ("/caf\xc3\xa9", "/plain", "/bad\xff", "", "/a%2Fb"):
        environ = _environ(PATH_INFO=raw, SCRIPT_NAME="/mount\xc3\xa9/")
        werkzeug = WerkzeugRequest(environ)
        assert "/" + seam.decode_wsgi_path(raw).lstrip("/") == werkzeug.path
        assert seam.decode_wsgi_path("/mount\xc3\xa9/").rstrip("/") == werkzeug.root_path
    assert seam.decode_wsgi_path("/caf\xc3\xa9") == "/café"


def test_server_of_is_werkzeugs_server_address():
    cases = [
        {},
        {"SERVER_NAME": "10.0.0.1", "SERVER_PORT": "8000"},
        {"SERVER_NAME": "example.com", "SERVER_PORT": ""},
        {"SERVER_NAME": "/run/app.sock", "SERVER_PORT": ""},
    ]
    for overrides in cases:
        environ = _environ(**overrides)
        assert seam.server_of(environ) == WerkzeugRequest(environ).server
    assert seam.server_of(_environ(SERVER_NAME="10.0.0.1", SERVER_PORT="8000")) == (
        "10.0.0.1",
        8000,
    )


def test_close_callbacks_are_what_call_on_close_adds():
    response = WerkzeugResponse("body")
    assert seam.close_callbacks(response) == []
    called = []
    response.call_on_close(lambda: called.append(True))
    assert len(seam.close_callbacks(response)) == 1
    response.close()
    assert called == [True]


def test_header_list_is_a_copy_of_the_wsgi_list():
    headers = Headers([("Content-Type", "text/plain"), ("X-A", "1"), ("X-A", "2")])
    listed = seam.header_list(headers)
    assert listed == headers.to_wsgi_list()
    listed.append(("X-B", "3"))
    assert "X-B" not in headers  # a copy: the response's own headers are untouched


def test_fill_response_makes_what_the_constructor_makes():
    expected = WerkzeugResponse(b"{}", 201, content_type="application/json")
    filled = WerkzeugResponse.__new__(WerkzeugResponse)
    pairs = [("Content-Type", "application/json"), ("Content-Length", "2")]
    seam.fill_response(filled, pairs, 201, "201 CREATED")
    filled.direct_passthrough = False
    filled.response = [b"{}"]
    assert (filled.status, filled.status_code) == (expected.status, expected.status_code)
    assert filled.headers.to_wsgi_list() == expected.headers.to_wsgi_list()
    assert filled.get_data() == expected.get_data()
    # Headers set afterwards are validated and found as usual, and close callbacks work.
    filled.headers["X-Later"] = "yes"
    assert filled.headers.get("x-later") == "yes"
    called = []
    filled.call_on_close(lambda: called.append(True))
    filled.close()
    assert called == [True]
    filled.status_code = 404
    assert filled.status == "404 NOT FOUND"


def test_cache_body_is_where_get_data_and_form_parsing_look():
    environ = _environ(
        REQUEST_METHOD="POST",
        CONTENT_TYPE="application/x-www-form-urlencoded",
        CONTENT_LENGTH="7",
    )
    request = WerkzeugRequest(environ)
    seam.cache_body(request, b"a=1&b=2")  # the stream itself is never read
    assert request.get_data() == b"a=1&b=2"
    assert request.form.to_dict() == {"a": "1", "b": "2"}
