import logging

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


def test_a_configured_app_passes():
    app = App(secret_key=GOOD_SECRET, allowed_hosts=["example.com"])
    CookieSessions(app)
    assert deployment_findings(app) == []


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
