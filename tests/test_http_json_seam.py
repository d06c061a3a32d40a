"""Pins what microback/http/_stdlib_json.py relies on in json.encoder.c_make_encoder.

A Python release that changes it fails here by name (json_dumps would fall back to the
slower ``JSONEncoder.encode`` if the C encoder went away; this test says so first).
"""

import json
import math

import pytest

from microback.http._stdlib_json import compact_c_encoder


def _unknown(value):
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def test_the_c_encoder_exists_and_encodes_as_json_dumps_compact():
    encoder = compact_c_encoder(_unknown)
    assert encoder is not None, "json.encoder.c_make_encoder is gone: json_dumps is slower"
    values = [{"message": "Hello, World!"}, [1, 2.5, None, True, "é\u2028"], {"a": {"b": []}}]
    for value in values:
        expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        assert "".join(encoder(value, 0)) == expected
    assert "".join(encoder({"s": {3, 1}}, 0)) == '{"s":[1,3]}'  # default is called


def test_the_c_encoder_refuses_nan_and_unknown_types():
    encoder = compact_c_encoder(_unknown)
    assert encoder is not None
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            "".join(encoder([bad], 0))
    with pytest.raises(TypeError):
        "".join(encoder(object(), 0))


def test_the_c_encoder_stops_a_value_that_contains_itself():
    # No shared cycle check (markers=None): C recursion's guard ends it.
    encoder = compact_c_encoder(_unknown)
    assert encoder is not None
    value: list = []
    value.append(value)
    with pytest.raises(RecursionError):
        "".join(encoder(value, 0))
