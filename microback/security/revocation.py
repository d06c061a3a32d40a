"""Ended sessions, recorded in the database so that a copy of a cookie dies at log-out.

A signed cookie cannot be recalled from a browser, or from whoever copied it. ``Auth``
therefore gives each log-in a random session id (kept in the signed session) and, at log-out,
writes that id here. Every process and host that shares the database then refuses the id:
the check rides in the query that loads the user (``NOT EXISTS`` on this table's unique
index), so it costs no extra round trip. A row is kept for as long as a copy of the cookie
could still be valid (the session lifetime) and deleted after that.
"""

from __future__ import annotations

import datetime
import random
from typing import TYPE_CHECKING, Any

import peewee

from .clock import utcnow

if TYPE_CHECKING:
    from ..db import Database

__all__ = ["RevokedSessions"]

#: One log-out in this many also deletes the rows that expired, so the table stays small
#: without a periodic job (as the rate-limit counters do).
_CLEANUP_EVERY = 100


class RevokedSessions:
    """The table ``auth_revoked_session``: session ids ended by a log-out."""

    def __init__(self, db: Database, *, lifetime: int) -> None:
        class RevokedSession(db.Model):  # type: ignore[name-defined, misc]
            session_id = peewee.CharField(max_length=64, unique=True)
            expires_at = peewee.DateTimeField(index=True)

            class Meta:
                table_name = "auth_revoked_session"

        self.model = RevokedSession
        self.lifetime = lifetime

    def revoke(self, session_id: str) -> None:
        """Refuse ``session_id`` from now on, everywhere (a second revocation is a no-op)."""
        expires_at = utcnow() + datetime.timedelta(seconds=self.lifetime)
        row = self.model.insert(session_id=session_id, expires_at=expires_at)
        row.on_conflict_ignore().execute()
        if random.random() < 1 / _CLEANUP_EVERY:  # noqa: S311 (when to clean up, not a secret)
            self.delete_expired()

    def not_revoked(self, session_id: str) -> Any:
        """A condition for a query: ``session_id`` has not been revoked."""
        model = self.model
        return ~peewee.fn.EXISTS(
            model.select(peewee.SQL("1")).where(model.session_id == session_id)
        )

    def delete_expired(self) -> int:
        """Delete rows no live cookie can carry any more; give how many."""
        return int(self.model.delete().where(self.model.expires_at <= utcnow()).execute())
