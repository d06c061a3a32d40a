"""Bad input against declared input, generated with a fixed seed (a property-style loop:
hypothesis is not a dependency): deeply nested bodies, huge arrays within the body limit,
wrong types at every level, duplicate keys, bytes that are not UTF-8, numbers past 64 bits,
NaN and Infinity, lone surrogates, in bodies, query strings, forms and headers. The property:
a 2xx for input that fits, otherwise a 4xx problem document; never a 5xx, never a traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from collections.abc import Iterator
from typing import Annotated, Any, Literal, TypedDict
from urllib.parse import quote_from_bytes

import msgspec
import pydantic
import pytest

from microback import App, Body, Form, Header, Query
from microback.testing import TestClient
from microback.validation.body import _no_key_can_repeat

SEED = 20261202
CASES = 60


class Item(msgspec.Struct, forbid_unknown_fields=True):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    qty: Annotated[int, msgspec.Meta(ge=1)]
    tags: list[str] = []


class Order(msgspec.Struct):
    title: str
    items: list[Item]
    kind: Literal["a", "b"] = "a"
    price: float = 0.0


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: str | None = None


class Person(TypedDict):
    name: str
    friends: list[str]


class PydanticOrder(pydantic.BaseModel):
    title: str
    items: list[dict[str, int]]
    when: pydantic.AwareDatetime | None = None


@dataclasses.dataclass
class Filters:
    q: str
    page: Annotated[int, msgspec.Meta(ge=1)] = 1
    tags: list[Literal["x", "y"]] = dataclasses.field(default_factory=list)


class Caller(msgspec.Struct):
    x_count: int
    x_ratio: float = 1.0


VALID: dict[str, Any] = {
    "/orders": {"title": "t", "items": [{"sku": "s", "qty": 1, "tags": ["a"]}], "price": 1.5},
    "/points": {"x": 1, "y": 2.5, "label": "p"},
    "/people": {"name": "ada", "friends": ["bob"]},
    "/pydantic": {"title": "t", "items": [{"a": 1}], "when": "2026-12-02T10:00:00Z"},
    "/numbers": [1, 2, 3],
}


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = App(secret_key="x" * 32, max_content_length=1024 * 1024)

    @app.post("/orders")
    def orders(request, order: Order):
        return {"ok": len(order.items)}

    @app.post("/points")
    def points(request, point: Point):
        return {"ok": point.x}

    @app.post("/people")
    def people(request, person: Person):
        return {"ok": person["name"]}

    @app.post("/pydantic")
    def pydantic_orders(request, order: PydanticOrder):
        return {"ok": order.title}

    @app.post("/numbers")
    def numbers(request, values: Annotated[list[int], Body()]):
        return {"ok": len(values)}

    @app.get("/search")
    def search(request, filters: Annotated[Filters, Query()]):
        return {"ok": filters.q}

    @app.post("/form")
    def form(request, filters: Annotated[Filters, Form()]):
        return {"ok": filters.q}

    @app.get("/headers")
    def headers(request, caller: Annotated[Caller, Header()]):
        return {"ok": caller.x_count}

    return TestClient(app)


def _assert_answered(response, *, must_refuse: bool) -> None:
    status = response.status_int
    assert status < 500, (status, response.text[:500])
    assert "Traceback" not in response.text
    if must_refuse or status >= 400:
        assert 400 <= status < 500, (status, response.text[:300])
        assert response.content_type == "application/problem+json", response.text[:300]
        document = response.json
        assert document["status"] == status and document["detail"]
        assert len(document.get("errors", ())) <= 100


# --- values -------------------------------------------------------------------------------


def _scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            0,
            -1,
            2**63 - 1,
            1.5,
            "",
            "x" * rng.randint(1, 50),
            "\u00e9\u4e2d\U0001f600",
            [],
            {},
            [1, "a", None],
            {"nested": {"deeper": [1]}},
        ]
    )


def _paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copied = copy.deepcopy(value)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copied


# Raw JSON fragments a value can be replaced by: not valid JSON, or past what fits.
_BAD_TOKENS = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b"-1e400",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"123456789012345678901234567890",
    b'"\\ud800"',
    b'"\\udc00x"',
    b'"\\ud800\\ud800"',
    b'"\xff\xfe"',
    b'"\xc3\x28"',
    b'"\xed\xa0\x80"',
    b"'single'",
    b"undefined",
    b"0x10",
    b"01",
    b"[1,]",
    b'{"a":1,}',
    b"tru",
]


def _bodies(rng: random.Random, valid: Any) -> Iterator[tuple[str, bytes, bool]]:
    """``(kind, body, must_refuse)`` cases derived from a valid body."""
    paths = list(_paths(valid))
    for _ in range(CASES):
        kind = rng.choice(["wrong_type", "bad_token", "nested", "duplicate", "bytes", "huge"])
        if kind == "wrong_type":
            path = rng.choice(paths)
            yield kind, json.dumps(_replace(valid, path, _scalar(rng))).encode(), False
        elif kind == "bad_token":
            path = rng.choice(paths)
            marker = "\x00MARK\x00"
            text = json.dumps(_replace(valid, path, marker)).encode()
            token = rng.choice(_BAD_TOKENS)
            yield kind, text.replace(json.dumps(marker).encode(), token, 1), True
        elif kind == "nested":
            depth = rng.choice([100, 1_000, 10_000, 100_000])
            opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
            inner = opener * depth + b"1" + closer * depth
            path = rng.choice(paths)
            marker = "\x00MARK\x00"
            text = json.dumps(_replace(valid, path, marker)).encode()
            yield kind, text.replace(json.dumps(marker).encode(), inner, 1), depth > 100
        elif kind == "duplicate":
            # A key twice in one object is refused, whichever of its values is valid.
            if isinstance(valid, dict) and valid:
                key = rng.choice(list(valid))
                again = json.dumps(rng.choice([valid[key], _scalar(rng)]))
                first = json.dumps(valid)[1:-1]
                yield kind, f'{{{first}, "{key}": {again}}}'.encode(), True
                yield kind, f'{{"{key}": {again}, {first}}}'.encode(), True
        elif kind == "bytes":
            text = bytearray(json.dumps(valid).encode())
            for _ in range(rng.randint(1, 4)):
                text.insert(rng.randrange(len(text) + 1), rng.choice([0xFF, 0xC3, 0x80, 0xED]))
            yield kind, bytes(text), True
        else:
            count = rng.choice([10_000, 100_000])
            item = rng.choice(["1", '"x"', "null", "[]", "{}", "18446744073709551616"])
            array = b"[" + b",".join([item.encode()] * count) + b"]"
            path = rng.choice(paths)
            marker = "\x00MARK\x00"
            text = json.dumps(_replace(valid, path, marker)).encode()
            body = text.replace(json.dumps(marker).encode(), array, 1)
            yield kind, body, False


@pytest.mark.parametrize("path", sorted(VALID))
def test_generated_bad_bodies_are_a_4xx_problem_never_a_500(client, path):
    rng = random.Random(f"{SEED}{path}")  # noqa: S311 - reproducible, not secret
    assert client.post_json(path, VALID[path]).status_int == 200
    seen: set[str] = set()
    for kind, body, must_refuse in _bodies(rng, VALID[path]):
        seen.add(kind)
        response = client.post(path, body, content_type="application/json", expect_errors=True)
        try:
            _assert_answered(response, must_refuse=must_refuse)
        except AssertionError as exc:
            raise AssertionError(f"{kind}: {body[:200]!r}") from exc
    kinds = {"wrong_type", "bad_token", "nested", "duplicate", "bytes", "huge"}
    if not isinstance(VALID[path], dict):
        kinds.remove("duplicate")
    assert seen == kinds


def test_a_key_twice_in_one_object_is_refused_whatever_its_values(client):
    # Parsers disagree on which value counts (a proxy may read the first, msgspec keeps the
    # last), so the body is refused rather than read one way.
    for body in (
        b'{"x": 7, "x": 1, "y": 2}',
        b'{"x": "a", "x": 1, "y": 2}',
        b'{"x": 1, "y": 2, "x": "a"}',
        # Colons inside strings, and \u003a escapes that decode to colons, must not hide one.
        b'{"x": 1, "label": "a:b", "x": 2, "y": 1}',
        b'{"x": 1, "label": "\\u003a\\u003A", "x": 2, "y": 1}',
        b'{"x": 1, "y": 2, "x": "::"}',
        b'{"x": "\\u003a", "y": 2, "x": 1}',
    ):
        refused = client.post("/points", body, content_type="application/json", status=400)
        assert refused.content_type == "application/problem+json"
        assert refused.json["detail"] == (
            "the JSON body has the key 'x' twice in one object; send it once"
        )
    # Colons and \u003a escapes in strings are no repeat either.
    body = b'{"x": 1, "y": 2, "label": "12:30 \\u003a \\\\u003a http://x"}'
    assert client.post("/points", body, content_type="application/json").json == {"ok": 1}
    # The same key in two objects is no repeat.
    item = {"sku": "s", "qty": 1, "tags": ["a"]}
    order = {"title": "t", "items": [item, item], "price": 1.5}
    assert client.post_json("/orders", order).json == {"ok": 2}


_TEXT_VALUES = [
    "",
    "x",
    "1",
    "0",
    "-1",
    "1.5",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "true",
    "null",
    "[]",
    "{}",
    "\u00e9",
    "\ud800",
    "x" * 5000,
]
_RAW_BYTES = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"%", b"%zz", b"\x00"]


def _text(rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        return rng.choice(_RAW_BYTES)
    return rng.choice(_TEXT_VALUES).encode("utf-8", "surrogatepass")


def _pairs(rng: random.Random) -> list[tuple[bytes, bytes]]:
    names = [b"q", b"page", b"tags", b"other", b"q\xff"]
    return [(rng.choice(names), _text(rng)) for _ in range(rng.randint(0, 6))]


def _encoded(pairs: list[tuple[bytes, bytes]]) -> str:
    return "&".join(f"{quote_from_bytes(k)}={quote_from_bytes(v)}" for k, v in pairs)


def test_generated_query_strings_are_answered_never_a_500(client):
    rng = random.Random(SEED)  # noqa: S311 - reproducible, not secret
    for _ in range(CASES * 2):
        query = _encoded(_pairs(rng))
        response = client.get(f"/search?{query}", expect_errors=True)
        _assert_answered(response, must_refuse=False)


def test_generated_forms_are_answered_never_a_500(client):
    rng = random.Random(SEED + 1)  # noqa: S311 - reproducible, not secret
    for _ in range(CASES * 2):
        body = _encoded(_pairs(rng)).encode()
        if rng.random() < 0.2:
            body = body + rng.choice(_RAW_BYTES)
        response = client.post(
            "/form", body, content_type="application/x-www-form-urlencoded", expect_errors=True
        )
        _assert_answered(response, must_refuse=False)


def test_generated_headers_are_answered_never_a_500(client):
    rng = random.Random(SEED + 2)  # noqa: S311 - reproducible, not secret
    for _ in range(CASES * 2):
        environ = {
            f"HTTP_{name}": _text(rng).decode("latin-1")
            for name in ("X_COUNT", "X_RATIO")
            if rng.random() < 0.8
        }
        response = client.get("/headers", extra_environ=environ, expect_errors=True)
        _assert_answered(response, must_refuse="HTTP_X_COUNT" not in environ)


def test_the_colon_count_never_clears_a_body_with_a_key_twice():
    # The usual body is cleared by counting colons (no second parse); a key twice, at any
    # depth, with colons and escapes anywhere, must always go on to the parse that refuses it.
    rng = random.Random(f"{SEED}colons")  # noqa: S311 - reproducible, not secret
    pieces = ["a", "b:", ":", "\\u003a", "\\u003A", "\\\\u003a", 'x\\"y', "é"]

    def text():
        return '"' + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3))) + '"'

    def value(depth):
        kind = rng.randrange(5 if depth < 3 else 3)
        if kind == 0:
            return text()
        if kind == 1:
            return rng.choice(["1", "-2.5", "true", "null"])
        if kind == 2:
            return "[" + ", ".join(value(depth + 1) for _ in range(rng.randint(0, 3))) + "]"
        return obj(depth + 1)

    def obj(depth, repeat=False):
        keys = list(dict.fromkeys(text() for _ in range(rng.randint(1, 4))))
        if repeat:
            keys.insert(rng.randrange(len(keys) + 1), rng.choice(keys))
        return "{" + ", ".join(f"{key}: {value(depth)}" for key in keys) + "}"

    cleared = repeats = 0
    for _ in range(3000):
        body = obj(0, repeat=rng.random() < 0.5).encode()
        # Two spellings of one key ("\u003a" and ":") repeat it too: decoding tells.
        if _repeats(json.loads(body, object_pairs_hook=lambda pairs: pairs)):
            repeats += 1
            assert not _no_key_can_repeat(body), body
        else:
            cleared += _no_key_can_repeat(body)
    assert repeats > 1000
    assert cleared > 100  # bodies without a repeat are cleared, or the count saves nothing


def _repeats(value):
    """Whether a key is twice in one object, for ``json`` decoding objects as lists of pairs."""
    if isinstance(value, list) and value and all(isinstance(item, tuple) for item in value):
        keys = [key for key, _ in value]
        return len(set(keys)) < len(keys) or any(_repeats(item) for _, item in value)
    return isinstance(value, list) and any(_repeats(item) for item in value)
