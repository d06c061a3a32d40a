from microback import App, Response
from microback.testing import TestClient

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def make_app(**settings):
    app = App(secret_key="x" * 32, **settings)

    @app.get("/")
    def index(request):
        return {"ok": True}

    @app.get("/boom")
    def boom(request):
        raise RuntimeError

    @app.get("/own-csp")
    def own_csp(request):
        return Response("x", headers={"Content-Security-Policy": "default-src 'self'"})

    return app


def test_every_response_gets_security_headers_errors_included():
    client = TestClient(make_app())
    for response in (
        client.get("/"),
        client.get("/missing", status=404),
        client.get("/boom", status=500),
        client.options("/"),
    ):
        for name, value in EXPECTED.items():
            assert response.headers[name] == value, (response.status, name)
        assert "Strict-Transport-Security" not in response.headers


def test_hsts_only_over_https():
    client = TestClient(make_app(), extra_environ={"wsgi.url_scheme": "https"})
    assert client.get("/").headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_response_keeps_its_own_header():
    response = TestClient(make_app()).get("/own-csp")
    assert response.headers["Content-Security-Policy"] == "default-src 'self'"


def test_each_header_can_be_changed_or_dropped():
    app = make_app(
        frame_options="SAMEORIGIN",
        referrer_policy="",
        cross_origin_opener_policy="",
        hsts_seconds=0,
    )
    response = TestClient(app, extra_environ={"wsgi.url_scheme": "https"}).get("/")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    for name in ("Referrer-Policy", "Cross-Origin-Opener-Policy", "Strict-Transport-Security"):
        assert name not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_response_that_allows_framing_decides_alone():
    app = make_app()

    @app.get("/embeddable")
    def embeddable(request):
        return "<p>widget</p>", {"X-Frame-Options": "SAMEORIGIN"}

    response = TestClient(app).get("/embeddable")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Content-Security-Policy" not in response.headers
