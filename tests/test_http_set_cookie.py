"""The session's Set-Cookie header is the one werkzeug's dump_cookie gives, whatever changes.

``CookieHeader`` keeps the attributes it formatted for the current second; these calls run
within a second or two, so most use kept attributes, and the checks pass either way.
"""

from __future__ import annotations

import pytest
from werkzeug.http import dump_cookie

from microback.http.set_cookie import CookieHeader

ATTRIBUTE_SETS = [
    {"max_age": 1209600, "path": "/", "domain": None, "secure": False, "samesite": "Lax"},
    {"max_age": 1209600, "path": "/", "domain": None, "secure": True, "samesite": "Lax"},
    {"max_age": None, "path": "/a b", "domain": ".Example.com:80", "secure": True},
    {"max_age": 60, "path": "/app", "domain": "example.com", "secure": True, "samesite": "None"},
]
VALUES = ["eyJ2aXNpdHMiOjF9.Z1abcQ.sig-_nature", "", 'a "quoted"; value', "é"]


@pytest.mark.parametrize("name", ["session", "__Host-session"])
def test_every_header_is_the_one_dump_cookie_gives(name: str) -> None:
    header = CookieHeader()
    for _ in range(2):  # the second pass uses the attributes kept by the first
        for attributes in ATTRIBUTE_SETS:
            options = {"samesite": None, **attributes}
            for value in VALUES:
                expected = dump_cookie(name, value, httponly=True, **options)
                assert header(name, value, httponly=True, **options) == expected
