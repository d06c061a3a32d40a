import logging
import secrets

import pytest

from microback import App
from microback.security import CookieSessions, deployment_findings

GOOD_SECRET = "k3J9x-VQ2m8_Lr5tY7wZ0aB4cD6eF1gH2iJ3kL4mN5o"


def settings_named(findings):
    return sorted({finding.setting for finding in findings})


def test_a_default_app_is_not_ready_for_production(caplog, monkeypatch):
    monkeypatch.delenv("MICROBACK_SECRET_KEY", raising=False)
    with caplog.at_level(logging.WARNING):
        app = App(debug=True)
    assert settings_named(deployment_findings(app)) == ["allowed_hosts", "debug", "secret_key"]


@pytest.mark.parametrize(
    ("settings", "secure"),
    [({"trusted_proxies": ["127.0.0.1"]}, None), ({}, True)],
    ids=["behind-a-trusted-proxy", "always-secure"],
)
def test_a_configured_app_passes(settings, secure):
    app = App(secret_key=GOOD_SECRET, allowed_hosts=["example.com"], **settings)
    CookieSessions(app, secure=secure)
    assert deployment_findings(app) == []


def test_cookies_secure_only_over_https_without_a_trusted_proxy_are_a_finding():
    # Behind a TLS proxy that is not trusted, every request looks like HTTP: no Secure.
    app = App(secret_key=GOOD_SECRET, allowed_hosts=["example.com"])
    CookieSessions(app)
    [finding] = deployment_findings(app)
    assert finding.setting == "sessions.secure"
    assert "MICROBACK_TRUSTED_PROXIES" in finding.message and "secure=True" in finding.message


def test_weak_choices_are_each_named():
    app = App(
        secret_key="changeme",
        allowed_hosts=["*"],
        hsts_seconds=0,
        frame_options="",
    )
    CookieSessions(app, secure=False)
    findings = deployment_findings(app)
    assert settings_named(findings) == [
        "allowed_hosts",
        "frame_options",
        "hsts_seconds",
        "secret_key",
        "sessions.secure",
    ]
    assert all(GOOD_SECRET not in f.message and "changeme" not in f.message for f in findings)


def test_short_secret_is_weak():
    app = App(secret_key="x" * 31, allowed_hosts=["example.com"])
    [finding] = deployment_findings(app)
    assert finding.setting == "secret_key" and "at least 32" in finding.message


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("secret", "6 bytes"),
        ("changeme", "8 bytes"),
        ("x" * 16, "16 bytes"),
        ("é" * 15, "30 bytes"),  # bytes, not characters, are what an attacker guesses
        ("x" * 32, "only 1 different character"),
        ("x" * 64, "only 1 different character"),
        ("ab" * 32, "only 2 different characters"),
        ("abcd" * 8, "only 4 different characters"),
        ("changeme" * 4, "a shorter string repeated"),
        ("secret" * 6, "a shorter string repeated"),
        ("Secret-123" * 5, "a shorter string repeated"),
        ("changeme" + "x" * 24, "mostly repeated text"),  # a typed key padded to 32
        ("Password1" * 4 + "!", "mostly repeated text"),
        ("secret" * 5 + "12", "mostly repeated text"),
        ("k3J9x-VQ2m" + "ab" * 30, "mostly repeated text"),
    ],
)
def test_low_entropy_secrets_are_weak_and_say_why(key, why):
    app = App(secret_key=key, allowed_hosts=["example.com"])
    [finding] = deployment_findings(app)
    assert finding.setting == "secret_key"
    assert finding.message.startswith(f"the secret key is weak ({why}): use at least 32 ")
    # Never quoted ("secret" is in "the secret key" and "import secrets", not as a quote).
    assert key not in finding.message.replace("secret key", "").replace("secrets", "")


@pytest.mark.parametrize(
    "key",
    [
        GOOD_SECRET,
        secrets.token_urlsafe(32),
        secrets.token_hex(16),  # 32 hex digits: 128 random bits
        secrets.token_hex(32),
        secrets.token_hex(5000),  # only the first 64 characters are read for repetition
        "".join(secrets.choice("0123456789") for _ in range(64)),  # 212 random bits
        "correct horse battery staple, and more words",
    ],
)
def test_random_or_long_secrets_pass(key):
    app = App(secret_key=key, allowed_hosts=["example.com"])
    assert deployment_findings(app) == []
