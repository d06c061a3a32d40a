import pytest

from microback import App, SettingsError
from microback.testing import TestClient


def make_client(**settings):
    app = App(secret_key="x" * 32, **settings)

    @app.get("/where")
    def where(request):
        return {"addr": request.remote_addr, "scheme": request.scheme, "url": request.url}

    return TestClient(app)


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:80"])
def test_local_hosts_are_allowed_by_default(host):
    assert make_client().get("/where", headers={"Host": host}).status_int == 200


def test_other_hosts_are_refused_with_the_setting_named():
    response = make_client().get("/where", headers={"Host": "evil.example"}, status=400)
    assert response.json["error"]["message"] == (
        "the host 'evil.example' is not served here; add it to the allowed_hosts setting "
        "(MICROBACK_ALLOWED_HOSTS)"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_configured_hosts_and_subdomains():
    client = make_client(allowed_hosts=["example.com", ".api.example.org"])
    for host in ("example.com", "EXAMPLE.com:443", "api.example.org", "v1.api.example.org"):
        assert client.get("/where", headers={"Host": host}).status_int == 200
    for host in ("localhost", "evil.example.com", "example.com.evil.net", "xapi.example.org"):
        assert client.get("/where", headers={"Host": host}, status=400)


def test_star_allows_any_host(monkeypatch):
    monkeypatch.setenv("MICROBACK_ALLOWED_HOSTS", "*")
    assert make_client().get("/where", headers={"Host": "anything.test"}).status_int == 200


def test_forwarded_headers_are_ignored_from_untrusted_peers():
    client = make_client()
    response = client.get(
        "/where",
        headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"},
        extra_environ={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert response.json["addr"] == "203.0.113.9"
    assert response.json["scheme"] == "http"


def test_forwarded_headers_from_a_trusted_proxy():
    client = make_client(trusted_proxies=["10.0.0.0/8"])
    response = client.get(
        "/where",
        headers={
            # The client wrote the first entry itself; our proxies appended the rest.
            "X-Forwarded-For": "1.2.3.4, 198.51.100.7, 10.0.0.2",
            "X-Forwarded-Proto": "https",
        },
        extra_environ={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert response.json["addr"] == "198.51.100.7"
    assert response.json["scheme"] == "https"
    assert response.json["url"].startswith("https://")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_bad_proxy_setting_is_refused():
    with pytest.raises(SettingsError, match=r"'10\.0\.0\.300' is not an IP address"):
        App(secret_key="x" * 32, trusted_proxies=["10.0.0.300"])
    with pytest.raises(SettingsError, match="must be a list of strings"):
        App(secret_key="x" * 32, allowed_hosts="example.com")
