import ast
import logging
import secrets
from pathlib import Path

import pytest

from microback import App, Router
from microback.security import CookieSessions
from microback.security.csrf import SESSION_KEY, Csrf, csrf_exempt, csrf_token, normalize_origin
from microback.security.sessions import ROTATED_KEYS
from microback.testing import TestClient

SECRET = "csrf-test-secret-0123456789abcdef0123"
MISSING = "CSRF token missing: send it in the X-CSRF-Token header or the csrf_token form field"
INCORRECT = "CSRF token incorrect"
UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]


def make_app(**options):
    app = App(secret_key=SECRET)
    CookieSessions(app)
    Csrf(app, **options)
    calls = []

    @app.get("/form")
    def form(request):
        return {"token": csrf_token(request)}

    @app.get("/tokens")
    def tokens(request):
        return {"tokens": [csrf_token(request) for _ in range(5)]}

    @app.route("/thing", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def thing(request):
        calls.append(request.method)
        return {"method": request.method}

    @app.post("/json")
    def json_body(request):
        return {"got": request.json}

    @app.post("/login")
    def login(request):
        request.session["user"] = "alice"
        request.session.rotate()
        return {}

    @app.post("/webhook")
    @csrf_exempt
    def webhook(request):
        return {"received": True}

    @csrf_exempt
    @app.post("/webhook-outer")
    def webhook_outer(request):
        return {"received": True}

    hooks = Router("/hooks", name="hooks")

    @hooks.post("/stripe")
    @csrf_exempt
    def stripe(request):
        return {"received": True}

    app.mount(hooks)
    app.calls = calls
    return app


@pytest.fixture
def app():
    return make_app()


def logged_in(app, base="http://localhost"):
    """A client with a session cookie, and a token for that session."""
    client = TestClient(app)
    token = client.get(f"{base}/form").json["token"]
    assert "session" in client.cookies
    return client, token


def message(response):
    return response.json["detail"]


# --- the token --------------------------------------------------------------------------------


def test_pages_without_a_form_set_no_cookie(app):
    client = TestClient(app)
    response = client.get("/thing")
    assert "Set-Cookie" not in response.headers
    assert "Set-Cookie" in client.get("/form").headers


@pytest.mark.parametrize("method", UNSAFE)
def test_token_in_the_header_is_accepted(app, method):
    client, token = logged_in(app)
    response = client.request("/thing", method=method, headers={"X-CSRF-Token": token})
    assert response.json == {"method": method}


def test_token_in_the_form_field_is_accepted(app):
    client, token = logged_in(app)
    assert client.post("/thing", {"csrf_token": token}).json == {"method": "POST"}
    multipart = client.post(
        "/thing", {"csrf_token": token}, upload_files=[("file", "a.txt", b"hello")]
    )
    assert multipart.json == {"method": "POST"}


def test_a_json_body_is_left_for_the_handler(app):
    client, token = logged_in(app)
    response = client.post_json("/json", {"a": 1}, headers={"X-CSRF-Token": token})
    assert response.json == {"got": {"a": 1}}


@pytest.mark.parametrize("method", UNSAFE)
def test_missing_token_is_refused_and_says_where_to_send_it(app, method):
    client, _ = logged_in(app)
    response = client.request("/thing", method=method, status=403)
    assert response.json == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": MISSING,
    }
    assert app.calls == []


def test_a_json_body_does_not_count_as_the_form_field(app):
    client, token = logged_in(app)
    response = client.post_json("/json", {"csrf_token": token}, status=403)
    assert message(response) == MISSING


def test_a_browser_gets_the_refusal_as_a_page(app):
    client, _ = logged_in(app)
    response = client.post("/thing", headers={"Accept": "text/html"}, status=403)
    assert response.content_type == "text/html"
    assert f"<p>{MISSING}</p>" in response.text


def test_the_names_are_configurable():
    app = make_app(field_name="_token", header_name="X-XSRF")
    client, token = logged_in(app)
    response = client.post("/thing", {"csrf_token": token}, status=403)
    assert message(response) == (
        "CSRF token missing: send it in the X-XSRF header or the _token form field"
    )
    assert client.post("/thing", {"_token": token}).status_int == 200
    assert client.post("/thing", headers={"X-XSRF": token}).status_int == 200


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(lambda good: secrets.token_urlsafe(64), id="random, right length"),
        pytest.param(lambda good: good[:-1], id="truncated"),
        pytest.param(lambda good: good + "A", id="too long"),
        pytest.param(
            lambda good: good[:9] + ("A" if good[9] != "A" else "B") + good[10:], id="1 char"
        ),
        pytest.param(lambda good: good[:40] + "!" + good[41:], id="not base64url"),
        pytest.param(lambda good: good[:40] + "é" + good[41:], id="non-ascii"),
        pytest.param(lambda good: good[:40] + "\n" + good[41:], id="newline skipped by lax b64"),
        pytest.param(lambda good: "x", id="short garbage"),
    ],
)
def test_wrong_token_is_refused(app, wrong):
    client, token = logged_in(app)
    response = client.post("/thing", {"csrf_token": wrong(token)}, status=403)
    assert message(response) == INCORRECT


def test_token_from_another_session_is_refused(app):
    _, victim_token = logged_in(app)
    attacker, _ = logged_in(app)
    response = attacker.post("/thing", headers={"X-CSRF-Token": victim_token}, status=403)
    assert message(response) == INCORRECT


def test_session_without_a_secret_refuses_any_token(app):
    # A session made by a JSON login, say, that never handed out a token.
    _, token = logged_in(app)
    other = TestClient(app)
    other.post("/login")  # no cookie yet, so no token needed
    assert "session" in other.cookies
    response = other.post("/thing", headers={"X-CSRF-Token": token}, status=403)
    assert message(response) == INCORRECT


def test_token_from_before_rotation_is_refused(app):
    client, before = logged_in(app)
    client.post("/login", headers={"X-CSRF-Token": before})
    response = client.post("/thing", headers={"X-CSRF-Token": before}, status=403)
    assert message(response) == INCORRECT
    after = client.get("/form").json["token"]
    assert client.post("/thing", headers={"X-CSRF-Token": after}).status_int == 200


def test_rotation_drops_the_key_csrf_stores():
    # Session.rotate() drops the keys it lists; renaming one side would keep old tokens valid.
    assert SESSION_KEY in ROTATED_KEYS


def test_masked_tokens_differ_per_call_yet_all_verify(app):
    client = TestClient(app)
    tokens = client.get("/tokens").json["tokens"] + [client.get("/form").json["token"]]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert client.post("/thing", headers={"X-CSRF-Token": token}).status_int == 200


def test_a_tampered_session_cookie_still_needs_the_token(app):
    client = TestClient(app)
    client.set_cookie("session", "forged")
    assert message(client.post("/thing", status=403)) == MISSING


def test_csrf_token_needs_csrf_set_up(caplog):
    app = App(secret_key=SECRET)
    CookieSessions(app)

    @app.get("/form")
    def form(request):
        return {"token": csrf_token(request)}

    with caplog.at_level(logging.ERROR, logger="microback.app"):
        TestClient(app).get("/form", status=500)
    error = caplog.records[-1].exc_info[1]
    assert isinstance(error, RuntimeError)
    assert "CSRF protection is not set up: create Csrf(app)" in str(error)


def test_csrf_needs_sessions():
    with pytest.raises(RuntimeError, match=r"create CookieSessions\(app\) first"):
        Csrf(App(secret_key=SECRET))


# --- requests that are not checked ------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_are_never_checked(app, method):
    client, _ = logged_in(app)
    headers = {"Origin": "https://evil.example", "Referer": "https://evil.example/"}
    response = client.request("https://localhost/thing", method=method, headers=headers)
    assert response.status_int == 200


def test_no_session_cookie_needs_no_token(app):
    # A webhook or a script: no cookie, no Origin, nothing a foreign page could borrow.
    assert TestClient(app).post("/thing").json == {"method": "POST"}


@pytest.mark.parametrize("authorization", ["Bearer abc.def", "bearer abc"])
def test_bearer_requests_are_exempt(app, authorization):
    client, _ = logged_in(app)
    headers = {"Authorization": authorization, "Origin": "https://evil.example"}
    assert client.post("/thing", headers=headers).json == {"method": "POST"}


@pytest.mark.parametrize("authorization", ["Basic YTpi", "Bearer ", "Bearer", "Token abc"])
def test_other_authorization_is_not_exempt(app, authorization):
    # Basic credentials are cached and re-sent by the browser: as ambient as a cookie.
    client, _ = logged_in(app)
    response = client.post("/thing", headers={"Authorization": authorization}, status=403)
    assert message(response) == MISSING


@pytest.mark.parametrize("path", ["/webhook", "/webhook-outer", "/hooks/stripe"])
def test_exempt_routes_are_not_checked(app, path):
    client, _ = logged_in(app)
    response = client.post(f"https://localhost{path}", headers={"Origin": "https://evil.example"})
    assert response.json == {"received": True}


def test_an_unmatched_route_is_still_checked(app):
    # Fail closed: a before_request hook registered later may act on any path.
    client, token = logged_in(app)
    assert message(client.post("/nowhere", status=403)) == MISSING
    client.post("/nowhere", headers={"X-CSRF-Token": token}, status=404)


# --- Origin and Referer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://localhost:8080", "https://localhost", "http://sub.localhost"],
)
def test_cross_site_origin_is_refused_even_with_a_valid_token(app, origin):
    client, token = logged_in(app)
    headers = {"Origin": origin, "X-CSRF-Token": token}
    response = client.post("/thing", headers=headers, status=403)
    assert message(response) == f"cross-site request refused: Origin {origin} is not trusted"
    assert app.calls == []


def test_cross_site_origin_is_refused_without_a_session_login_csrf(app):
    client = TestClient(app)
    response = client.post("/login", headers={"Origin": "https://evil.example"}, status=403)
    assert (
        message(response)
        == "cross-site request refused: Origin https://evil.example is not trusted"
    )
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("with_session", [True, False])
def test_null_origin_is_refused(app, with_session):
    client, token = logged_in(app) if with_session else (TestClient(app), "")
    response = client.post("/thing", headers={"Origin": "null", "X-CSRF-Token": token}, status=403)
    assert message(response) == "Origin null refused"


@pytest.mark.parametrize(
    "origin", ["localhost", "ftp://localhost", "http://localhost/path", "http://u@localhost", ""]
)
def test_malformed_origin_is_refused(app, origin):
    response = TestClient(app).post("/thing", headers={"Origin": origin}, status=403)
    assert message(response).startswith("cross-site request refused: Origin ")


def test_malformed_origin_is_shown_quoted_and_short(app):
    response = TestClient(app).post("/thing", headers={"Origin": "x" * 500}, status=403)
    assert message(response) == f"cross-site request refused: Origin {'x' * 100!r} is not trusted"


@pytest.mark.parametrize("origin", ["http://localhost", "http://LOCALHOST:80"])
def test_same_origin_is_accepted(app, origin):
    client, token = logged_in(app)
    response = client.post("/thing", headers={"Origin": origin, "X-CSRF-Token": token})
    assert response.status_int == 200


def test_trusted_origin_is_accepted():
    app = make_app(trusted_origins=["HTTPS://App.Example:443", "http://localhost:5173"])
    client, token = logged_in(app)
    for origin in ("https://app.example", "http://localhost:5173"):
        headers = {"Origin": origin, "X-CSRF-Token": token}
        assert client.post("/thing", headers=headers).status_int == 200
    headers = {"Origin": "https://app.example", "X-CSRF-Token": "wrong"}
    assert message(client.post("/thing", headers=headers, status=403)) == INCORRECT


@pytest.mark.parametrize("bad", ["app.example", "https://app.example/", "https://app.example/x"])
def test_trusted_origins_are_checked_at_start_up(bad):
    with pytest.raises(ValueError, match="is not an origin; write scheme://host"):
        make_app(trusted_origins=[bad])
    with pytest.raises(TypeError, match="must be a list"):
        make_app(trusted_origins="https://app.example")


def test_https_cross_site_referer_is_refused(app):
    client, token = logged_in(app, "https://localhost")
    headers = {"Referer": "https://evil.example/attack?x=1", "X-CSRF-Token": token}
    response = client.post("https://localhost/thing", headers=headers, status=403)
    assert message(response) == (
        "cross-site request refused: Referer https://evil.example is not trusted"
    )
    plain_http = {"Referer": "http://localhost/form", "X-CSRF-Token": token}
    response = client.post("https://localhost/thing", headers=plain_http, status=403)
    assert (
        message(response) == "cross-site request refused: Referer http://localhost is not trusted"
    )
    # Without a session too: a Referer that is present and foreign is a browser sent from afar.
    response = TestClient(app).post(
        "https://localhost/thing", headers={"Referer": "https://evil.example/"}, status=403
    )
    assert message(response).startswith("cross-site request refused: Referer")


def test_https_same_origin_referer_is_accepted(app):
    client, token = logged_in(app, "https://localhost")
    headers = {"Referer": "https://localhost/form", "X-CSRF-Token": token}
    assert client.post("https://localhost/thing", headers=headers).status_int == 200


def test_https_without_origin_or_referer(app):
    client, token = logged_in(app, "https://localhost")
    response = client.post("https://localhost/thing", headers={"X-CSRF-Token": token}, status=403)
    assert message(response).startswith("Referer missing: an HTTPS request that carries")
    # No session cookie: a server-to-server call, allowed.
    assert TestClient(app).post("https://localhost/thing").status_int == 200


def test_origin_wins_over_referer(app):
    client, token = logged_in(app, "https://localhost")
    headers = {
        "Origin": "https://localhost",
        "Referer": "https://evil.example/",  # ignored when Origin is present, as in Django
        "X-CSRF-Token": token,
    }
    assert client.post("https://localhost/thing", headers=headers).status_int == 200


def test_referer_is_not_checked_over_plain_http(app):
    client, token = logged_in(app)
    headers = {"Referer": "https://evil.example/", "X-CSRF-Token": token}
    assert client.post("/thing", headers=headers).status_int == 200


def test_normalize_origin():
    assert normalize_origin("HTTPS://Example.COM:443") == "https://example.com"
    assert normalize_origin("http://example.com:8080") == "http://example.com:8080"
    assert normalize_origin("http://[::1]:8000") == "http://[::1]:8000"
    for bad in ("null", "example.com", "https://example.com/", "https://x:99999", "data:,x"):
        assert normalize_origin(bad) is None


# --- secrets are compared in constant time only -----------------------------------------------

SECURITY = Path(__file__).resolve().parents[2] / "microback" / "security"
SENSITIVE = {
    "csrf",
    "digest",
    "hash",
    "hashed",
    "hmac",
    "mac",
    "nonce",
    "otp",
    "password",
    "secret",
    "signature",
    "token",
}


def _words(node: ast.AST) -> set[str]:
    """The identifier parts a value is known by: ``request.session["_csrf"]`` -> csrf, ..."""
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    elif isinstance(node, ast.Subscript):
        key = node.slice
        words = _words(node.value)
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            words |= {w for w in key.value.lower().split("_") if w}
        return words
    elif isinstance(node, ast.Call):
        return _words(node.func)
    else:
        return set()
    return {w for w in name.lower().split("_") if w}


def _is_public(node: ast.AST) -> bool:
    """A literal in the source is no secret: comparing with it leaks nothing."""
    if isinstance(node, ast.Constant):
        return True
    return isinstance(node, ast.Tuple | ast.List | ast.Set) and all(
        isinstance(e, ast.Constant) for e in node.elts
    )


def insecure_comparisons(source: str, filename: str = "<source>") -> list[str]:
    """Places where a secret-looking value meets ``==``, ``!=``, ``in`` or ``not in``.

    Those stop at the first differing byte, so their timing tells an attacker how much of a
    guess was right. ``is None`` checks and comparisons with literals are fine. A comparison
    that is safe for another reason (a database lookup by the hash of a random token) says
    why on its line: ``# timing-safe: <reason>``.
    """
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Compare):
            continue
        span = lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
        if any(line.partition("# timing-safe:")[2].strip() for line in span):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
            if not isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn):
                continue
            for value, other in ((left, right), (right, left)):
                if _words(value) & SENSITIVE and not _is_public(other):
                    found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize(
    "source",
    [
        "ok = token == expected",
        "ok = supplied != request.session['_csrf']",
        "ok = expected_signature == sig",
        "ok = hashlib.sha256(data).digest() == stored",
        "ok = given_token in issued",
        "ok = a < b == self._secret",
        "ok = token == expected  # timing-safe:",
    ],
)
def test_the_checker_finds_plain_comparisons(source):
    assert insecure_comparisons(source)


@pytest.mark.parametrize(
    "source",
    [
        "ok = hmac.compare_digest(token, expected)",
        "ok = token is None",
        "ok = len(token) != 86",
        "ok = token == ''",
        "ok = scheme.lower() == 'bearer'",
        "ok = origin == own or origin in trusted",
        "ok = stored.startswith(PREFIX)",
        "q = Token.where(Token.token_hash == digest)  # timing-safe: lookup by hash",
    ],
)
def test_the_checker_lets_safe_code_pass(source):
    assert not insecure_comparisons(source)


def test_security_code_compares_secrets_in_constant_time_only():
    files = sorted(SECURITY.rglob("*.py"))
    assert SECURITY / "csrf.py" in files
    found = [
        problem
        for path in files
        for problem in insecure_comparisons(path.read_text(encoding="utf-8"), path.name)
    ]
    assert not found, "compare secrets with hmac.compare_digest:\n" + "\n".join(found)
    # And the token check really goes through compare_digest.
    tree = ast.parse((SECURITY / "csrf.py").read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert any(ast.unparse(c.func).endswith("compare_digest") for c in calls)
