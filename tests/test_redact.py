"""One masking helper for every URL that is logged or shown."""

from __future__ import annotations

import pytest

from microback.redact import Masker, mask_url


@pytest.mark.parametrize(
    "name",
    [
        "token", "password", "passwd", "secret", "key", "signature", "code",  # the words
        "access_token", "refresh-token", "apiKey", "API_KEY", "X-Amz-Signature",
        "client_secret", "passcode", "Password", "pass%77ord", "user[password]",
    ],
)  # fmt: skip
def test_names_that_look_secret(name: str) -> None:
    assert Masker().secret_name(name)


@pytest.mark.parametrize("name", ["page", "keyword", "q", "sort", "codec", "tokens", ""])
def test_names_that_do_not(name: str) -> None:
    assert not Masker().secret_name(name)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:s3cret@db.example:5432/notes", "postgresql://app:***@db.example:5432/notes"),
        (
            "postgresql://app@db.example/notes?sslmode=require&password=s3cret",
            "postgresql://app@db.example/notes?sslmode=require&password=***",
        ),
        (
            "mysql://root:pw@[::1]:3306/app?passwd=pw2",
            "mysql://root:***@[::1]:3306/app?passwd=***",
        ),
        ("sqlite:///notes.db", "sqlite:///notes.db"),
        ("https://api.example/cb?code=abc&state=xyz#top", "https://api.example/cb?code=***&state=xyz#top"),
        ("postgresql://app:s3cret@host:99999/db?token=t", "postgresql://***@host:99999/db?token=***"),
        ("/plain?flag&token=&key", "/plain?flag&token=&key"),
    ],
)  # fmt: skip
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_request_targets_keep_everything_but_the_secret_values() -> None:
    masker = Masker()
    assert masker.target("/notes") == "/notes"
    assert masker.target("/a?page=2&token=x%20y&page=3") == "/a?page=2&token=***&page=3"


def test_words_are_configurable_and_checked() -> None:
    masker = Masker(["sid", " OTP "])
    assert masker.words == ("sid", "otp")
    assert masker.target("/a?sid=1&userOtp=2&token=3") == "/a?sid=***&userOtp=***&token=3"
    assert Masker([]).target("/a?password=1") == "/a?password=1"
    with pytest.raises(ValueError, match="letters and digits only"):
        Masker(["api-key"])
