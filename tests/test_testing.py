"""The test helpers users get: TestClient, and the pytest plugin's ``client`` fixture."""

import pytest

from microback import App
from microback.testing import TestClient

pytest_plugins = ["pytester"]


def test_test_client_catches_wsgi_violations():
    def broken_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return "a str is not an iterable of bytes"

    with pytest.raises(AssertionError, match="should not return a string"):
        TestClient(broken_app).get("/")


def test_test_client_raises_on_unexpected_errors():
    app = App(secret_key="x" * 32)
    with pytest.raises(Exception, match="404"):
        TestClient(app).get("/missing")


def test_users_json_test_is_three_lines(pytester):
    pytester.makepyfile(
        myapp="""
        from microback import App

        app = App(secret_key="s" * 32)

        @app.get("/ping")
        def ping(request):
            return {"pong": True}
        """,
        conftest="""
        import pytest

        @pytest.fixture
        def app():
            from myapp import app
            return app
        """,
        test_ping="""
        def test_ping(client):
            assert client.get("/ping").json == {"pong": True}

        def test_wrong(client):
            assert client.get("/ping").json == {"pong": False}
        """,
    )
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=1, failed=1)
