"""Pagination from request parameters: cursor and offset, Link header, bad input."""

from __future__ import annotations

import pytest

from microback.db import paginate
from microback.testing import TestClient


@pytest.fixture
def api(app, models):
    User = models.User
    with models.User._meta.database.atomic():
        User.insert_many([{"name": f"user{i:02}"} for i in range(1, 8)]).execute()

    @app.get("/users")
    def list_users(request):
        page = paginate(request, User.select(), default_limit=3, max_limit=5)
        return page.to_dict(), page.headers

    @app.get("/users/newest-first")
    def newest_first(request):
        page = paginate(request, User.select(), descending=True, default_limit=3)
        return page.to_dict(lambda user: user.name), page.headers

    @app.get("/users/counted")
    def counted(request):
        query = User.select().where(User.name != "user04")
        page = paginate(request, query, default_limit=2, count=True)
        return page.to_dict(lambda user: user.name)

    return TestClient(app)


def test_cursor_pages_cover_every_row_once_with_link_headers(api):
    names, url, links = [], "/users", []
    while url:
        response = api.get(url)
        names += [user["name"] for user in response.json["items"]]
        link = response.headers.get("Link", "")
        links.append(link)
        cursor = response.json["next"]
        if cursor is None:
            assert 'rel="next"' not in link
            url = None
        else:
            assert link.startswith(f'<http://localhost/users?cursor={cursor}>; rel="next"')
            url = f"/users?cursor={cursor}"
    assert names == [f"user{i:02}" for i in range(1, 8)]
    assert len(links) == 3


def test_limit_is_kept_in_the_next_link(api):
    response = api.get("/users?limit=5")
    assert len(response.json["items"]) == 5
    assert response.headers["Link"].startswith("<http://localhost/users?limit=5&cursor=")


def test_descending_cursor(api):
    first = api.get("/users/newest-first").json
    assert first["items"] == ["user07", "user06", "user05"]
    second = api.get(f"/users/newest-first?cursor={first['next']}").json
    assert second["items"] == ["user04", "user03", "user02"]


def test_offset_pages(api):
    response = api.get("/users?offset=5&limit=3")
    assert [u["name"] for u in response.json["items"]] == ["user06", "user07"]
    assert response.json["next"] is None
    middle = api.get("/users?offset=2&limit=2")
    assert (middle.json["next"], middle.json["prev"]) == (4, 0)
    assert middle.headers["Link"] == (
        '<http://localhost/users?limit=2&offset=4>; rel="next", '
        '<http://localhost/users?limit=2&offset=0>; rel="prev"'
    )
    first = api.get("/users?offset=0&limit=2").json
    assert (first["next"], first["prev"]) == (2, None)
    assert api.get("/users?offset=1&limit=3").json["prev"] == 0  # not -2


def _walk(api, url, direction):
    """Follow ``direction`` ("next" or "prev") from ``url``; the items of each page seen."""
    pages = []
    while url:
        response = api.get(url)
        body = response.json
        pages.append([item if isinstance(item, str) else item["name"] for item in body["items"]])
        link = response.headers.get("Link", "")
        if body[direction] is None:
            assert f'rel="{direction}"' not in link
            url = None
        else:
            path = url.split("?")[0]
            url = f"{path}?cursor={body[direction]}"
            assert f'<http://localhost{url}>; rel="{direction}"' in link
    return pages


@pytest.mark.parametrize("path", ["/users", "/users/newest-first"])
def test_prev_cursors_walk_back_over_the_same_pages(api, path):
    forward = _walk(api, path, "next")
    assert len(forward) == 3
    first = api.get(path).json
    assert first["prev"] is None  # the first page has no page before it
    last = api.get(f"{path}?cursor={api.get(path).json['next']}").json
    last = api.get(f"{path}?cursor={last['next']}").json
    assert last["next"] is None
    backward = _walk(api, f"{path}?cursor={last['prev']}", "prev")
    assert backward == forward[-2::-1]  # the pages before the last, in reverse
    # And forward again from a page reached backwards.
    middle = api.get(f"{path}?cursor={last['prev']}").json
    assert _walk(api, f"{path}?cursor={middle['next']}", "next") == forward[-1:]


def test_a_total_count_is_given_only_when_asked_for(api):
    assert "total" not in api.get("/users").json
    counted = api.get("/users/counted").json
    assert counted == {
        "items": ["user01", "user02"],
        "next": counted["next"],
        "prev": None,
        "total": 6,
    }
    assert api.get("/users/counted?offset=4").json["total"] == 6


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=abc", "the 'limit' parameter must be an integer from 1 to 5, got 'abc'"),
        ("limit=0", "the 'limit' parameter must be an integer from 1 to 5, got '0'"),
        ("limit=500", "the 'limit' parameter must be an integer from 1 to 5, got '500'"),
        ("offset=-1", "the 'offset' parameter must be an integer of at least 0, got '-1'"),
        ("offset=1e9", "the 'offset' parameter must be an integer of at least 0, got '1e9'"),
        ("cursor=%27%3B%20DROP", "the 'cursor' parameter is not a cursor this API gave out"),
        ("cursor=WzFd&offset=2", "the 'offset' parameter cannot be combined with 'cursor'"),
        ("cursor=e30", "the 'cursor' parameter is not a cursor this API gave out"),
        ("cursor=WzIsImFmdGVyIl0", "the 'cursor' parameter is not a cursor"),  # [2,"after"]
        # [2**63] and [-2**63 - 1]: beyond any integer column (SQLite's driver raised a 500)
        ("cursor=WzkyMjMzNzIwMzY4NTQ3NzU4MDhd", "the 'cursor' parameter is not a cursor"),
        ("cursor=Wy05MjIzMzcyMDM2ODU0Nzc1ODA5XQ", "the 'cursor' parameter is not a cursor"),
        (
            "offset=9223372036854775808",
            "the 'offset' parameter must be an integer from 0 to 9223372036854775807, got '92",
        ),
    ],
)
def test_malformed_parameters_are_a_400_naming_them(api, query, message):
    response = api.get(f"/users?{query}", status=400)
    assert response.json["detail"].startswith(message)


def test_the_largest_offset_is_an_empty_page(api):
    # 19 digits: the most a 64-bit integer has (the query getter refused more than 18).
    page = api.get("/users?offset=9223372036854775807").json
    assert page["items"] == [] and page["next"] is None
