"""Pagination of a query from the request's ``limit`` and ``cursor`` (or ``offset``) parameters.

A cursor is the default: the next page starts after the last key seen (``WHERE id > 42``), so
pages stay correct while rows are added and deep pages cost no more than the first. ``offset``
is there for clients that need to jump to a page. Either way the answer carries the way on and
back, in a ``Link`` header (``rel="next"``, ``rel="prev"``) and in the body as ``"next"`` and
``"prev"``; the number of rows of the whole query is there too when the handler asks for it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import urlencode

import peewee

from ..http import InvalidParameter, Request, json_dumps, json_loads
from ..routing import INT64_MAX, INT64_MIN

__all__ = ["Page", "paginate"]


@dataclasses.dataclass
class Page:
    """One page of rows, and how to ask for the pages before and after it."""

    items: list[Any]
    limit: int
    #: The ``cursor`` value for the next page, or ``None`` on the last page (cursor mode).
    next_cursor: str | None = None
    #: The ``offset`` value for the next page, or ``None`` on the last page (offset mode).
    next_offset: int | None = None
    #: The full URL of the next page, or ``None`` on the last page.
    next_url: str | None = None
    #: The ``cursor`` value for the previous page, or ``None`` on the first (cursor mode).
    prev_cursor: str | None = None
    #: The ``offset`` value for the previous page, or ``None`` on the first (offset mode).
    prev_offset: int | None = None
    #: The full URL of the previous page, or ``None`` on the first page.
    prev_url: str | None = None
    #: The number of rows in the whole query, when ``paginate(..., count=True)`` asked for it.
    total: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The ``Link`` header to the next and previous pages (RFC 8288), when there are any."""
        links = [
            f'<{url}>; rel="{rel}"'
            for url, rel in ((self.next_url, "next"), (self.prev_url, "prev"))
            if url
        ]
        return {"Link": ", ".join(links)} if links else {}

    def to_dict(self, serialize: Callable[[Any], Any] | None = None) -> dict[str, Any]:
        """Return ``{"items": [...], "next": ..., "prev": ...}`` for a JSON answer.

        ``next`` and ``prev`` are the ``cursor`` (or ``offset``) values of the pages after and
        before this one, ``null`` where there is none; ``"total"`` is added when counted. Rows
        are turned into dicts with ``serialize`` (default: the row's ``to_dict()``).
        """
        serialize = serialize or (lambda row: row.to_dict())
        body: dict[str, Any] = {
            "items": [serialize(row) for row in self.items],
            "next": self.next_cursor if self.next_offset is None else self.next_offset,
            "prev": self.prev_cursor if self.prev_offset is None else self.prev_offset,
        }
        if self.total is not None:
            body["total"] = self.total
        return body


def paginate(
    request: Request,
    query: peewee.ModelSelect,
    *,
    key: peewee.Field | None = None,
    descending: bool = False,
    default_limit: int = 20,
    max_limit: int = 100,
    count: bool = False,
) -> Page:
    """Run one page of ``query``, ordered by ``key`` (default: the primary key).

    Reads ``limit`` (1 to ``max_limit``), and ``cursor`` or ``offset``, from the query string;
    a malformed or out-of-range value is a 400 naming the parameter. ``key`` must be unique
    (an id, or a unique timestamp) so that a cursor points between two rows. With ``count``,
    the page carries the number of rows of the whole query (one more query, which on a large
    table costs a scan).
    """
    args = request.args
    limit = args.get_int("limit", default_limit, min=1, max=max_limit)
    cursor = args.get("cursor")
    offset = args.get_int("offset", None, min=0)
    if cursor is not None and offset is not None:
        raise InvalidParameter("offset", "cannot be combined with 'cursor'; send one of them")
    order_key = cast(peewee.Field, key if key is not None else query.model._meta.primary_key)
    total = query.order_by().count() if count else None
    if offset is not None:
        page = _offset_page(request, query, order_key, descending, limit, offset)
    else:
        page = _cursor_page(request, query, order_key, descending, limit, cursor)
    page.total = total
    return page


def _offset_page(
    request: Request,
    query: peewee.ModelSelect,
    key: peewee.Field,
    descending: bool,
    limit: int,
    offset: int,
) -> Page:
    ordered = query.order_by(key.desc() if descending else key.asc())
    rows = list(ordered.offset(offset).limit(limit + 1))
    page = Page(rows[:limit], limit)
    if len(rows) > limit:
        page.next_offset = offset + limit
        page.next_url = _url(request, {"offset": str(page.next_offset)})
    if offset > 0:
        page.prev_offset = max(0, offset - limit)
        page.prev_url = _url(request, {"offset": str(page.prev_offset)})
    return page


def _cursor_page(
    request: Request,
    query: peewee.ModelSelect,
    key: peewee.Field,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> Page:
    # A cursor is [value] for the rows after that key, or [value, "before"] for the rows
    # before it; the page before one is read backwards, then turned around.
    value, backwards = _decode(cursor) if cursor is not None else (None, False)
    reverse = descending != backwards  # the direction the rows are read in

    def beyond(bound: Any, *, ahead: bool) -> Any:
        """The rows past ``bound`` in the page order (``ahead``), or before it."""
        return key > bound if ahead != descending else key < bound

    ordered = query.order_by(key.desc() if reverse else key.asc())
    if cursor is not None:
        ordered = ordered.where(beyond(value, ahead=not backwards))
    rows = list(ordered.limit(limit + 1))
    more = len(rows) > limit  # beyond this page, in the direction read
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    page = Page(rows, limit)
    if not rows:
        return page
    first, last = _key_value(rows[0], key), _key_value(rows[-1], key)
    if more if not backwards else query.where(beyond(last, ahead=True)).exists():
        page.next_cursor = _encode([last])
    if cursor is not None and (
        more if backwards else query.where(beyond(first, ahead=False)).exists()
    ):
        page.prev_cursor = _encode([first, "before"])
    if page.next_cursor:
        page.next_url = _url(request, {"cursor": page.next_cursor})
    if page.prev_cursor:
        page.prev_url = _url(request, {"cursor": page.prev_cursor})
    return page


def _key_value(row: peewee.Model, key: peewee.Field) -> Any:
    value = getattr(row, key.name)
    if isinstance(value, peewee.Model):  # a foreign key as the key: use the id it holds
        value = row.__data__[key.name]
    return value


def _encode(position: list[Any]) -> str:
    raw = json_dumps(position).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(cursor: str) -> tuple[Any, bool]:
    """The key value in ``cursor``, and whether the page wanted is the one before it."""
    # A cursor is only a position: a forged one selects other rows of the same query, which
    # the client may read anyway. The value is bound as a parameter, never spliced into SQL.
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, *direction = json_loads(raw)
        if direction not in ([], ["before"]):
            raise ValueError(direction)
    except (ValueError, binascii.Error, TypeError):
        raise InvalidParameter(
            "cursor", "is not a cursor this API gave out; use the 'next' value of a page"
        ) from None
    if (
        not isinstance(value, int | float | str)
        or isinstance(value, bool)
        or (isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX)
    ):
        raise InvalidParameter("cursor", "is not a cursor this API gave out")
    return value, bool(direction)


def _url(request: Request, changes: Mapping[str, str]) -> str:
    query = [(k, v) for k, v in request.args.items(multi=True) if k not in ("cursor", "offset")]
    query.extend(changes.items())
    return f"{request.base_url}?{urlencode(query)}"
