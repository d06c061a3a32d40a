import logging

import pytest

from microback import App, Settings, SettingsError


def test_keyword_settings_are_used():
    app = App(secret_key="s" * 32, debug=True, max_content_length=10)
    assert app.settings.debug is True
    assert app.settings.max_content_length == 10
    assert app.settings.secret_key_generated is False


def test_environment_overrides_keywords(monkeypatch):
    monkeypatch.setenv("MICROBACK_MAX_CONTENT_LENGTH", "16MiB")
    monkeypatch.setenv("MICROBACK_DEBUG", "yes")
    app = App(secret_key="s" * 32, max_content_length=10)
    assert app.settings.max_content_length == 16 * 1024 * 1024
    assert app.settings.debug is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"max_content_lenght": 5},
            "unknown setting 'max_content_lenght'; did you mean 'max_content_length'?",
        ),
        ({"colour": "red"}, "unknown setting 'colour'; known settings: debug, secret_key"),
        ({"debug": "yes"}, "setting debug must be bool, got str"),
        ({"max_content_length": True}, "setting max_content_length must be int, got bool"),
        ({"max_content_length": -1}, "setting max_content_length must be at least 0, got -1"),
        ({"secret_key": ""}, "secret_key is empty"),
    ],
)
def test_bad_keyword_settings_name_the_setting(kwargs, message):
    with pytest.raises(SettingsError) as caught:
        App(**kwargs)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MICROBACK_DEBUG", "maybe", "invalid MICROBACK_DEBUG='maybe': must be one of true/false"),
        (
            "MICROBACK_MAX_CONTENT_LENGTH",
            "lots",
            "invalid MICROBACK_MAX_CONTENT_LENGTH='lots': must be a whole number of bytes",
        ),
        ("MICROBACK_MAX_FORM_PARTS", "0", "setting MICROBACK_MAX_FORM_PARTS must be at least 1"),
    ],
)
def test_bad_environment_settings_name_the_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        App(secret_key="s" * 32)
    assert str(caught.value).startswith(message)


def test_missing_secret_is_generated_without_a_warning(caplog, monkeypatch):
    # Only serving an app that signs with it warns (tests/integration/test_secret_key_warning.py).
    monkeypatch.delenv("MICROBACK_SECRET_KEY", raising=False)
    with caplog.at_level(logging.DEBUG):
        first, second = App(), App()
    assert first.settings.secret_key_generated
    assert len(first.settings.secret_key) >= 32
    assert first.settings.secret_key != second.settings.secret_key
    assert not caplog.records


def test_secret_key_for_notes_each_use_once():
    app = App(secret_key="s" * 32)
    assert app.secret_key_uses == []
    assert app.secret_key_for("session cookies") == "s" * 32
    app.secret_key_for("invitations")
    app.secret_key_for("session cookies")
    assert app.secret_key_uses == ["session cookies", "invitations"]


def test_secret_key_is_never_shown(monkeypatch):
    settings = Settings.load({"secret_key": "do-not-print-me-0123456789"}, environ={})
    assert "do-not-print-me" not in repr(settings)
    assert settings.describe("secret_key") == "(hidden)"
    with pytest.raises(SettingsError) as caught:
        Settings.load({}, environ={"MICROBACK_SECRET_KEY": "", "MICROBACK_DEBUG": "no"})
    assert str(caught.value).startswith("MICROBACK_SECRET_KEY is empty")


def test_secret_from_environment(monkeypatch):
    monkeypatch.setenv("MICROBACK_SECRET_KEY", "from-the-environment-0123456789")
    assert App().settings.secret_key == "from-the-environment-0123456789"


@pytest.mark.parametrize(
    ("raw", "size"),
    [("1048576", 1048576), ("512k", 512 * 1024), ("16MiB", 16 << 20), ("1G", 1 << 30)],
)
def test_sizes_accept_units(raw, size):
    assert (
        Settings.load(
            {}, environ={"MICROBACK_MAX_CONTENT_LENGTH": raw, "MICROBACK_SECRET_KEY": "k"}
        ).max_content_length
        == size
    )


def test_a_shared_generated_key_is_only_a_fallback(caplog):
    shared = {"MICROBACK_SHARED_SECRET_KEY": "made-by-the-master-0123456789"}
    with caplog.at_level(logging.WARNING, logger="microback"):
        fallback = Settings.load({}, environ=shared)
    assert fallback.secret_key == "made-by-the-master-0123456789"
    assert fallback.secret_key_generated
    assert not caplog.records  # the master already said so, once
    own = Settings.load({"secret_key": "set-in-code-0123456789"}, environ=shared)
    assert own.secret_key == "set-in-code-0123456789" and not own.secret_key_generated


def test_each_setting_is_written_once_with_how_it_is_read():
    # One table (issue 13): a field of Settings carries its parser, type and help; there is no
    # second list of names to keep in step with the fields.
    import dataclasses

    from microback.settings import Settings

    unread = [
        field.name
        for field in dataclasses.fields(Settings)
        if "spec" not in field.metadata and field.name != "secret_key_generated"
    ]
    assert unread == []
