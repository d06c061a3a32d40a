"""API tokens: ``Authorization: Bearer <token>``, shown once, stored only as a hash.

A token is 256 random bits, so a plain SHA-256 of it is as strong as a slow password hash
and lets the database find it by an index lookup. The table holds the hash, the owner, a
name, scopes, an expiry and a revocation time; a stolen copy of the table logs nobody in.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import peewee

from ..db.models import private
from .clock import utcnow

if TYPE_CHECKING:
    from ..db import Database

__all__ = ["NewToken", "TokenStore"]

#: Recognisable in logs and by secret scanners.
PREFIX = "mbt_"


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class NewToken(NamedTuple):
    """A token just created: ``secret`` is the only time the plain token is available."""

    token: Any
    secret: str


class TokenStore:
    """The ``auth_token`` table and the operations on it."""

    def __init__(
        self, db: Database, user_model: Any, *, default_lifetime: datetime.timedelta | None
    ) -> None:
        class Token(db.Model):  # type: ignore[name-defined, misc]
            user = peewee.ForeignKeyField(user_model, backref="tokens", on_delete="CASCADE")
            name = peewee.CharField(max_length=100)
            token_hash = private(peewee.CharField(max_length=64, unique=True))
            #: Space-separated scope names ("notes:read notes:write").
            scopes = peewee.CharField(max_length=255, default="")
            created_at = peewee.DateTimeField(default=utcnow)
            expires_at = peewee.DateTimeField(null=True)
            revoked_at = peewee.DateTimeField(null=True)

            class Meta:
                table_name = "auth_token"

            @property
            def scope_names(self) -> frozenset[str]:
                return frozenset(self.scopes.split())

        self.model = Token
        self.default_lifetime = default_lifetime

    def create(
        self,
        user: Any,
        name: str,
        *,
        scopes: Iterable[str] = (),
        lifetime: datetime.timedelta | None = None,
    ) -> NewToken:
        """Make a token for ``user``; show ``secret`` to the user once, it is not kept."""
        secret = PREFIX + secrets.token_urlsafe(32)
        lifetime = lifetime or self.default_lifetime
        row = self.model.create(
            user=user,
            name=name,
            token_hash=_fingerprint(secret),
            scopes=" ".join(sorted(set(scopes))),
            expires_at=utcnow() + lifetime if lifetime else None,
        )
        return NewToken(row, secret)

    def authenticate(self, secret: str) -> Any | None:
        """Give the live token row for a presented secret, or None."""
        if not secret.startswith(PREFIX) or len(secret) > 100:
            return None
        fingerprint = _fingerprint(secret)
        token = self.model.get_or_none(
            self.model.token_hash == fingerprint  # timing-safe: index lookup of a SHA-256
        )
        if token is None or token.revoked_at is not None:
            return None
        if token.expires_at is not None and token.expires_at <= utcnow():
            return None
        return token

    def revoke(self, token: Any) -> None:
        """Make ``token`` unusable from now on."""
        token.revoked_at = utcnow()
        token.save(only=[self.model.revoked_at])
