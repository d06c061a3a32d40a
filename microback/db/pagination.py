"""Pagination of a query from the request's ``limit`` and ``cursor`` (or ``offset``) parameters.

A cursor is the default: the next page starts after the last key seen (``WHERE id > 42``), so
pages stay correct while rows are added and deep pages cost no more than the first. ``offset``
is there for clients that need to jump to a page. Either way the answer carries the way on, in
a ``Link: <...>; rel="next"`` header and in the body as ``"next"``.
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
    """One page of rows, and how to ask for the next one."""

    items: list[Any]
    limit: int
    #: The ``cursor`` value for the next page, or ``None`` on the last page (cursor mode).
    next_cursor: str | None = None
    #: The ``offset`` value for the next page, or ``None`` on the last page (offset mode).
    next_offset: int | None = None
    #: The full URL of the next page, or ``None`` on the last page.
    next_url: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The ``Link`` header pointing at the next page (RFC 8288), when there is one."""
        return {"Link": f'<{self.next_url}>; rel="next"'} if self.next_url else {}

    def to_dict(self, serialize: Callable[[Any], Any] | None = None) -> dict[str, Any]:
        """Return ``{"items": [...], "next": cursor-or-offset-or-null}`` for a JSON answer.

        Rows are turned into dicts with ``serialize`` (default: the row's ``to_dict()``).
        """
        serialize = serialize or (lambda row: row.to_dict())
        following = self.next_cursor if self.next_offset is None else self.next_offset
        return {"items": [serialize(row) for row in self.items], "next": following}


def paginate(
    request: Request,
    query: peewee.ModelSelect,
    *,
    key: peewee.Field | None = None,
    descending: bool = False,
    default_limit: int = 20,
    max_limit: int = 100,
) -> Page:
    """Run one page of ``query``, ordered by ``key`` (default: the primary key).

    Reads ``limit`` (1 to ``max_limit``), and ``cursor`` or ``offset``, from the query string;
    a malformed or out-of-range value is a 400 naming the parameter. ``key`` must be unique
    (an id, or a unique timestamp) so that a cursor points between two rows.
    """
    args = request.args
    limit = args.get_int("limit", default_limit, min=1, max=max_limit)
    cursor = args.get("cursor")
    offset = args.get_int("offset", None, min=0)
    if cursor is not None and offset is not None:
        raise InvalidParameter("offset", "cannot be combined with 'cursor'; send one of them")
    order_key = cast(peewee.Field, key if key is not None else query.model._meta.primary_key)
    ordered = query.order_by(order_key.desc() if descending else order_key.asc())
    if offset is not None:
        rows = list(ordered.offset(offset).limit(limit + 1))
        more = len(rows) > limit
        next_offset = offset + limit if more else None
        url = _url(request, {"offset": str(next_offset)}) if more else None
        return Page(rows[:limit], limit, next_offset=next_offset, next_url=url)
    if cursor is not None:
        after = _decode(cursor)
        ordered = ordered.where(order_key < after if descending else order_key > after)
    rows = list(ordered.limit(limit + 1))
    if len(rows) <= limit:
        return Page(rows, limit)
    rows = rows[:limit]
    last = getattr(rows[-1], order_key.name)
    if isinstance(last, peewee.Model):  # a foreign key as the key: use the id it holds
        last = rows[-1].__data__[order_key.name]
    next_cursor = _encode(last)
    return Page(
        rows, limit, next_cursor=next_cursor, next_url=_url(request, {"cursor": next_cursor})
    )


def _encode(value: Any) -> str:
    raw = json_dumps([value]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(cursor: str) -> Any:
    # A cursor is only a position: a forged one selects other rows of the same query, which
    # the client may read anyway. The value is bound as a parameter, never spliced into SQL.
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        (value,) = json_loads(raw)
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
    return value


def _url(request: Request, changes: Mapping[str, str]) -> str:
    query = [(k, v) for k, v in request.args.items(multi=True) if k not in ("cursor", "offset")]
    query.extend(changes.items())
    return f"{request.base_url}?{urlencode(query)}"
