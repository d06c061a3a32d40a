"""The time the security tables store: naive UTC, one definition for all of them.

Sessions, API tokens, revocations and log-in records are compared with ``DateTimeField``
columns, which hold naive datetimes on every backend; UTC keeps them comparable across hosts.
"""

from __future__ import annotations

import datetime

__all__ = ["utcnow"]


def utcnow() -> datetime.datetime:
    """Give the current time in UTC, without a time zone (as the tables store it)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
