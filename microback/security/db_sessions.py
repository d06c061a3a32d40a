"""Sessions kept in the app's database, for sessions that must be listed and revoked.

The cookie holds only a random 256-bit identifier; the table holds its SHA-256, so a copy of
the table cannot be replayed as cookies. A session is one row, written only once it holds
something (anonymous visitors create no rows), given a new identifier when it is rotated
(login, privilege change), and deleted on logout. An identifier the table does not know is
never adopted: the request gets a new, empty session under a new identifier.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any, Literal

import peewee

from ..http import Request, json_dumps
from .clock import utcnow
from .sessions import USER_KEY, Session, SessionStore, SessionTooLarge

if TYPE_CHECKING:
    from ..app import App
    from ..db import Database

__all__ = ["DatabaseSessions"]

#: Far more than a session needs; the bound keeps one client from filling the table.
MAX_SESSION_BYTES = 64 * 1024


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class DatabaseSessions(SessionStore):
    """Give ``app``'s requests a ``request.session`` stored in ``db`` (table ``auth_session``).

    Create it before :class:`~microback.security.Auth`, which then uses it:
    ``auth.logout_everywhere(user)`` deletes the user's rows, and
    :meth:`for_user` / :meth:`revoke` let users list and end their sessions.
    """

    def __init__(
        self,
        app: App,
        db: Database,
        *,
        cookie_name: str | None = None,
        max_age: int = 14 * 24 * 3600,
        secure: bool | None = None,
        same_site: Literal["Lax", "Strict", "None"] = "Lax",
        domain: str | None = None,
        path: str = "/",
    ) -> None:
        class StoredSession(db.Model):  # type: ignore[name-defined, misc]
            key_hash = peewee.CharField(max_length=64, unique=True)
            data = peewee.TextField()
            user_id = peewee.BigIntegerField(null=True, index=True)
            user_agent = peewee.CharField(max_length=200, default="")
            created_at = peewee.DateTimeField(default=utcnow)
            expires_at = peewee.DateTimeField(index=True)

            class Meta:
                table_name = "auth_session"

        self.model = StoredSession
        super().__init__(
            app,
            cookie_name=cookie_name,
            max_age=max_age,
            secure=secure,
            same_site=same_site,
            domain=domain,
            path=path,
        )

    def _by_key(self, key: str) -> Any:
        return self.model.key_hash == _fingerprint(key)  # timing-safe: index lookup of a hash

    def load(self, request: Request) -> Session:
        key = self.cookie(request) or ""
        if 20 <= len(key) <= 100:
            row = self.model.get_or_none(self._by_key(key))
            if row is not None and row.expires_at > utcnow():
                try:
                    data = json.loads(row.data)
                except ValueError:
                    data = None
                if isinstance(data, dict):
                    return Session(data, self, is_new=False, key=key)
        return Session({}, self, is_new=True)

    def check_size(self, session: dict[str, Any]) -> None:
        size = len(json_dumps(session).encode())
        if size > MAX_SESSION_BYTES:
            raise SessionTooLarge(
                f"the session would be {size} bytes, over the {MAX_SESSION_BYTES}-byte limit"
            )

    def write(self, request: Request, session: Session) -> str | None:
        model = self.model
        if session.key is not None and (session.rotated or not session):
            model.delete().where(self._by_key(session.key)).execute()
            session.key = None
        if not session:
            return None
        fields = {
            "data": json_dumps(dict(session)),
            "user_id": session.get(USER_KEY),
            "expires_at": utcnow() + datetime.timedelta(seconds=self.max_age),
        }
        if session.key is None:
            session.key = secrets.token_urlsafe(32)
            user_agent = request.headers.get("User-Agent", "")[:200]
            model.create(key_hash=_fingerprint(session.key), user_agent=user_agent, **fields)
        else:
            model.update(**fields).where(self._by_key(session.key)).execute()
        return session.key

    # --- what users can see and end ------------------------------------------------------------

    def for_user(self, user_id: Any) -> list[Any]:
        """List the live sessions of a user, newest first (for a "your devices" page)."""
        model = self.model
        return list(
            model.select(model.id, model.user_agent, model.created_at, model.expires_at)
            .where(model.user_id == user_id, model.expires_at > utcnow())
            .order_by(model.created_at.desc())
        )

    def revoke(self, user_id: Any, session_id: int) -> bool:
        """End one session of a user (by its row id); False if there was none."""
        model = self.model
        deleted = model.delete().where(model.id == session_id, model.user_id == user_id)
        return bool(deleted.execute())

    def revoke_user(self, user_id: Any) -> int:
        """End every session of a user; give how many there were."""
        return int(self.model.delete().where(self.model.user_id == user_id).execute())

    def delete_expired(self) -> int:
        """Delete expired rows (run it from a periodic job); give how many."""
        return int(self.model.delete().where(self.model.expires_at <= utcnow()).execute())
