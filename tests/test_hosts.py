import re

import pytest

from microback import App, SettingsError
from microback.hosts import HostAllowList
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
    assert response.json["detail"] == (
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


def test_unix_trusts_a_proxy_on_a_unix_socket_and_nothing_else():
    # WSGI servers give a Unix-socket peer an empty REMOTE_ADDR.
    client = make_client(trusted_proxies=["unix"])
    forwarded = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}

    over_unix = client.get("/where", headers=forwarded, extra_environ={"REMOTE_ADDR": ""})
    over_tcp = client.get("/where", headers=forwarded, extra_environ={"REMOTE_ADDR": "10.0.0.1"})

    assert (over_unix.json["addr"], over_unix.json["scheme"]) == ("198.51.100.7", "https")
    assert (over_tcp.json["addr"], over_tcp.json["scheme"]) == ("10.0.0.1", "http")


def test_a_unix_socket_peer_is_not_trusted_without_unix():
    client = make_client(trusted_proxies=["127.0.0.1"])
    response = client.get(
        "/where", headers={"X-Forwarded-For": "198.51.100.7"}, extra_environ={"REMOTE_ADDR": ""}
    )
    assert response.json["addr"] == ""


def test_bad_proxy_setting_is_refused():
    with pytest.raises(SettingsError, match=r"'10\.0\.0\.300' is not an IP address"):
        App(secret_key="x" * 32, trusted_proxies=["10.0.0.300"])
    with pytest.raises(SettingsError, match="must be a list of strings"):
        App(secret_key="x" * 32, allowed_hosts="example.com")


#: Host values that are not ``name[:port]`` (RFC 9110 §7.2), each with the reason given.
MALFORMED_HOSTS = [
    ("localhost:80@evil.example", "'@' cannot be part of a host name"),
    ("user@localhost", "'@' cannot be part of a host name"),
    ("evil.com/.example.com", "'/' cannot be part of a host name"),
    ("localhost/path", "'/' cannot be part of a host name"),
    ("evil.com\\.example.com", "'\\\\' cannot be part of a host name"),
    ("local host", "' ' cannot be part of a host name"),
    ("localhost?x", "'?' cannot be part of a host name"),
    ("localhost#x", "'#' cannot be part of a host name"),
    ("under_score.example.com", "'_' cannot be part of a host name"),
    ("bücher.example.com", "non-ASCII characters; send an international name as punycode"),
    ("a..example.com", "empty label"),
    ("." + "a" * 64 + ".example.com", "empty label"),
    ("a" * 64 + ".example.com", "longer than 63 characters"),
    ("a." * 127 + "com", "longer than 253 characters"),
    ("", "it is empty"),
    (":80", "the name before ':' is empty"),
    ("localhost:", "the port is empty"),
    ("localhost:0", "the port is '0'"),
    ("localhost:65536", "the port is '65536'"),
    ("localhost:99999", "the port is '99999'"),
    ("localhost:080", "the port is '080'"),
    ("localhost:http", "the port is 'http'"),
    ("localhost:80:80", "IPv6 address must be written in brackets"),
    ("::1", "IPv6 address must be written in brackets"),
    ("[::1", "no closing ']'"),
    ("[::1]x", "only ':port' may follow"),
    ("[::1]:", "the port is empty"),
    ("[::1]:70000", "the port is '70000'"),
    ("[fe80::1%25eth0]", "is not an IPv6 address"),
    ("[localhost]", "is not an IPv6 address"),
    ("[v1.fe80::1]", "is not an IPv6 address"),
]


@pytest.mark.parametrize(("host", "reason"), MALFORMED_HOSTS)
def test_a_host_that_is_not_name_and_port_is_refused_before_routing(host, reason):
    app = App(secret_key="x" * 32, allowed_hosts=["*"])
    reached = []
    app.before_request(reached.append)

    @app.get("/reset")
    def reset(request):
        return {"link": request.host_url + "reset?token=secret"}

    response = TestClient(app).get("/reset", headers={"Host": host}, status=400)
    message = response.json["detail"]
    assert message.startswith("the Host header "), message
    assert "is not a valid name[:port]: " in message
    assert reason in message
    assert reached == []  # refused before any hook or handler


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "EXAMPLE.com:8443",
        "example.com.",
        "xn--bcher-kva.example.com",
        "a-b.example.com:1",
        "example.com:65535",
        "192.0.2.1:8000",
        "[::1]",
        "[::1]:8000",
        "[2001:DB8::1]:443",
        "[::ffff:192.0.2.1]",
    ],
)
def test_names_and_ip_addresses_with_or_without_a_port_are_valid(host):
    client = make_client(allowed_hosts=["*"])
    assert client.get("/where", headers={"Host": host}).status_int == 200


def test_suffix_patterns_match_whole_names_only():
    client = make_client(allowed_hosts=[".example.com", "[2001:db8::1]"])
    for host in ("example.com", "a.example.com:8000", "A.Example.COM.", "[2001:DB8::1]:443"):
        assert client.get("/where", headers={"Host": host}).status_int == 200, host
    for host in ("evil.com/.example.com", "evil.com\\.example.com", "evil.com?.example.com"):
        message = client.get("/where", headers={"Host": host}, status=400).json["detail"]
        assert "is not a valid name[:port]" in message, host
    assert client.get("/where", headers={"Host": "evilexample.com"}, status=400)


def test_the_password_reset_link_names_only_an_allowed_host():
    # The attack of issue 20: werkzeug 3.0 gave request.host_url = http://localhost:80@evil.example/
    app = App(secret_key="x" * 32)

    @app.get("/forgot")
    def forgot(request):
        return {"link": request.host_url + "reset?token=t"}

    client = TestClient(app)
    assert client.get("/forgot", headers={"Host": "localhost:8000"}).json == {
        "link": "http://localhost:8000/reset?token=t"
    }
    client.get("/forgot", headers={"Host": "localhost:80@evil.example"}, status=400)


def test_x_forwarded_host_is_never_believed_even_from_a_trusted_proxy():
    # Only the Host header names the host, and it is the one checked: a proxy that rewrites
    # Host must pass the client's on (nginx: proxy_set_header Host $host).
    client = make_client(trusted_proxies=["10.0.0.0/8"])
    response = client.get(
        "/where",
        headers={"Host": "localhost", "X-Forwarded-Host": "evil.example"},
        extra_environ={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert response.json["url"] == "http://localhost/where"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("example.com:8000", "'example.com:8000' has a port; give the name alone"),
        ("[::1]:80", "'[::1]:80' has a port"),
        ("example.com/app", "'example.com/app' is not a host name: '/' cannot be part"),
        ("https://example.com", "'https://example.com' is not a host name"),
        (".", "'.' is not a host name: it is empty"),
        (".[::1]", "'.[::1]': an IP address has no subdomains"),
    ],
)
def test_host_patterns_that_can_match_nothing_are_refused_at_start_up(pattern, message):
    with pytest.raises(SettingsError, match=re.escape(f"setting allowed_hosts: {message}")):
        App(secret_key="x" * 32, allowed_hosts=["localhost", pattern])


def test_a_pattern_with_a_final_dot_matches_the_name():
    client = make_client(allowed_hosts=["example.com.", ".example.org."])
    for host in ("example.com", "example.com.", "a.example.org", "a.example.org."):
        assert client.get("/where", headers={"Host": host}).status_int == 200, host


def test_a_non_ascii_host_is_named_as_the_client_typed_it():
    # A server hands the header's UTF-8 bytes to the app as latin-1 text (PEP 3333); the
    # answer names 'bücher', not 'bÃ¼cher'. Bytes that are not UTF-8 are shown as given.
    hosts = HostAllowList(["*"])
    sent = "bücher.example".encode().decode("latin-1")
    refusal = hosts.refusal({"HTTP_HOST": sent})
    assert refusal is not None
    assert "'bücher.example'" in refusal and "non-ASCII" in refusal
    assert "'b\xfccher.example'" in hosts.refusal({"HTTP_HOST": "b\xfccher.example"})
