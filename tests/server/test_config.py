"""ServerConfig: the server's settings and defaults in one place, read by the CLI (issue 13)."""

from __future__ import annotations

import dataclasses

import pytest

from microback.cli import build_parser
from microback.server.config import ServerConfig
from microback.settings import Settings


def test_the_cli_defaults_are_server_configs():
    args = build_parser().parse_args(["serve", "app:app"])
    default = ServerConfig()
    for field in dataclasses.fields(ServerConfig):
        if hasattr(args, field.name):
            assert getattr(args, field.name) == getattr(default, field.name), field.name
    for field in dataclasses.fields(default.limits):
        expected = getattr(default.limits, field.name)
        assert getattr(args, field.name) == (0 if expected is None else expected), field.name


@pytest.mark.parametrize("text", ["16MiB", "16M", "16 MiB", "16mb", str(16 * 1024 * 1024)])
def test_one_size_grammar_for_the_cli_and_the_settings(text):
    args = build_parser().parse_args(["serve", "app:app", "--max-body-size", text])
    settings = Settings.load({}, {"MICROBACK_MAX_CONTENT_LENGTH": text})
    assert args.max_body_size == settings.max_content_length == 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"connections": 0}, "connections must be a whole number of at least 1, not 0"),
        ({"max_concurrent_requests": True}, "max_concurrent_requests must be a whole number"),
        ({"graceful_timeout": -1}, "graceful_timeout must be 0 or more seconds, not -1"),
        ({"drain_delay": float("nan")}, "drain_delay must be 0 or more seconds, not nan"),
    ],
)
def test_a_wrong_setting_is_refused_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        ServerConfig(**changes)


def test_server_keywords_replace_fields_of_the_config():
    from microback.server import Server

    base = ServerConfig(graceful_timeout=7, connections=50)
    server = Server(lambda environ, start_response: [], config=base, connections=20)
    assert server.config == dataclasses.replace(base, connections=20)
    with pytest.raises(TypeError, match="unknown server setting"):
        Server(lambda environ, start_response: [], conections=20)
