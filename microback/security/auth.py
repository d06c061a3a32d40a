"""Users and who the current request is: login, logout, ``request.user``, throttled sign-in.

``Auth(app, db)`` gives the app a user table (``auth.User``), a token table
(``auth.Token``, see :mod:`.tokens`), signed-cookie sessions if it has none yet, and
``request.user``: the user of the session cookie or of an ``Authorization: Bearer`` token,
or :data:`ANONYMOUS`.

A session is bound to the user's ``session_epoch``: logging out everywhere or changing the
password increments it, and every cookie issued before stops working at once, on every
process and host, although the cookies themselves live only in browsers. Each log-in also
gets a session id of its own, which log-out revokes in the database (:mod:`.revocation`), so
a copy of the cookie taken before log-out is refused after it.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

import peewee
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..db.models import private
from ..http import Request, abort
from .clock import utcnow
from .db_sessions import DatabaseSessions
from .passwords import DEFAULT_ROUNDS, hash_password, needs_rehash, verify_password
from .ratelimit import Limit, RateLimiter, client_address, parse_limit
from .revocation import RevokedSessions
from .sessions import USER_KEY, CookieSessions, SessionStore
from .tokens import TokenStore

if TYPE_CHECKING:
    from ..app import App
    from ..db import Database

__all__ = ["ANONYMOUS", "AnonymousUser", "Auth", "normalize_email"]

_SESSION_USER = USER_KEY
_SESSION_EPOCH = "_epoch"
_SESSION_ID = "_sid"  # the id log-out revokes; 128 random bits


def normalize_email(email: str) -> str:
    """Give the form an address is stored and looked up in: trimmed and lower-cased.

    Lower-casing the whole address (not only the domain) makes ``Ada@x.org`` and
    ``ada@x.org`` one account, which is what people expect and what stops look-alike sign-ups.
    """
    return email.strip().lower()


class AnonymousUser:
    """``request.user`` when nobody is logged in: falsy checks, no roles, no id."""

    id = None
    email = None
    is_authenticated = False
    is_active = False

    def has_role(self, *roles: str) -> bool:
        return False

    def __repr__(self) -> str:
        return "<AnonymousUser>"


ANONYMOUS = AnonymousUser()


def _user_model(db: Database, extra_fields: dict[str, peewee.Field]) -> Any:
    class User(db.Model):  # type: ignore[name-defined, misc]
        """A user: an e-mail address unique in any case, a private password hash, roles."""

        email = peewee.CharField(max_length=254, unique=True)
        password_hash = private(peewee.CharField(max_length=128, default=""))
        is_active = peewee.BooleanField(default=True)
        email_verified = peewee.BooleanField(default=False)
        #: Space-separated role names ("admin editor").
        roles = peewee.CharField(max_length=255, default="")
        session_epoch = private(peewee.IntegerField(default=0))
        created_at = peewee.DateTimeField(default=utcnow)

        is_authenticated = True

        class Meta:
            table_name = "auth_user"  # "user" is reserved in PostgreSQL

        def save(self, *args: Any, **kwargs: Any) -> Any:
            self.email = normalize_email(self.email)
            return super().save(*args, **kwargs)

        @property
        def role_names(self) -> frozenset[str]:
            return frozenset(self.roles.split())

        def has_role(self, *roles: str) -> bool:
            """Tell whether the user has any of ``roles``."""
            return not self.role_names.isdisjoint(roles)

    for name, field in extra_fields.items():
        User._meta.add_field(name, field)
    return User


class Auth:
    """Users, login and ``request.user`` for ``app``, stored in ``db``.

    ``login_url`` is where :func:`login_required` sends browsers (API clients get 401).
    ``user_fields`` adds columns to ``auth.User`` (``{"name": fields.CharField(default="")}``).
    Sign-in attempts are limited per account and per client address (``login_limit_*``,
    like ``"10/15minutes"``), counted in the database so the limits hold across processes.
    """

    def __init__(
        self,
        app: App,
        db: Database,
        *,
        login_url: str | None = None,
        password_rounds: int = DEFAULT_ROUNDS,
        user_fields: dict[str, peewee.Field] | None = None,
        login_limit_per_account: str = "10/15minutes",
        login_limit_per_address: str = "100/15minutes",
        token_lifetime: datetime.timedelta | None = datetime.timedelta(days=90),
    ) -> None:
        self.app = app
        self.db = db
        self.login_url = login_url
        self.password_rounds = password_rounds
        self.account_limit: Limit = parse_limit(login_limit_per_account)
        self.address_limit: Limit = parse_limit(login_limit_per_address)
        self.User = _user_model(db, user_fields or {})
        self.tokens = TokenStore(db, self.User, default_lifetime=token_lifetime)
        self.Token = self.tokens.model
        self.limiter = app.extensions.get("rate_limiter") or RateLimiter(app, db)
        self.sessions: SessionStore = app.extensions.get("sessions") or CookieSessions(app)
        # Database sessions end when their row is deleted; any other store keeps the session
        # in the cookie, so log-out must record the session's id as ended.
        self.revoked: RevokedSessions | None = (
            None
            if isinstance(self.sessions, DatabaseSessions)
            else RevokedSessions(db, lifetime=self.sessions.max_age)
        )
        # Signed with the secret key, verified with it or a previous one, as session cookies
        # are: a reset link mailed just before a key rotation still works after it.
        self._link_keys = app.secret_keys_for("one-time links")
        self._signer = URLSafeTimedSerializer(
            self._link_keys[::-1],  # itsdangerous signs with the last key, verifies with all
            signer_kwargs={"digest_method": hashlib.sha256},
        )
        # (the database, the SQL that loads a session's user, its parameters after ours)
        self._session_query: tuple[Any, str, list[Any]] | None = None
        app.extensions["auth"] = self
        app.add_request_property("user", self._user_of_request)

    # --- accounts -----------------------------------------------------------------------------

    def create_user(self, email: str, password: str, **fields: Any) -> Any:
        """Create a user with a hashed password; a taken address is a 409 naming ``email``."""
        self.db.release()  # no pooled connection held while bcrypt runs
        return self.User.create(
            email=normalize_email(email),
            password_hash=hash_password(password, rounds=self.password_rounds),
            **fields,
        )

    def find_user(self, email: str) -> Any | None:
        """Give the user with this address, in any case, or None."""
        return self.User.get_or_none(self.User.email == normalize_email(email))

    def set_password(self, user: Any, password: str) -> None:
        """Store a new password and end every session of the user, this one included.

        Log the user in again afterwards (``auth.login``) to keep the current browser.
        """
        self.db.release()  # no pooled connection held while bcrypt runs
        user.password_hash = hash_password(password, rounds=self.password_rounds)
        user.session_epoch += 1
        user.save()
        self._delete_stored_sessions(user)

    def logout_everywhere(self, user: Any) -> None:
        """End every session of ``user``, on every device, at once."""
        self.User.update(session_epoch=self.User.session_epoch + 1).where(
            self.User.id == user.id
        ).execute()
        user.session_epoch += 1
        self._delete_stored_sessions(user)

    def _delete_stored_sessions(self, user: Any) -> None:
        # The epoch already voids them; deleting the rows keeps "your devices" truthful.
        if isinstance(self.sessions, DatabaseSessions):
            self.sessions.revoke_user(user.id)

    # --- signing in ---------------------------------------------------------------------------

    def authenticate(self, request: Request, email: str, password: str) -> Any | None:
        """Check an address and password; give the user, or None for any failure.

        An unknown address costs the same bcrypt work as a wrong password, and both give
        None, so the answer does not tell which accounts exist. Too many attempts for the
        account or from the client's address answer 429 with ``Retry-After`` instead, until
        the window ends; a success takes its attempt back and clears the account's count.

        Each attempt is counted before the password is checked and the count is committed
        at once, so concurrent attempts (on any worker) cannot overtake the limit: at most
        the limit's number are ever checked. Call it before the handler's first write, or
        the count waits for the end of the request (see :mod:`.ratelimit`). The request's
        connection goes back to the pool while bcrypt runs.
        """
        if not isinstance(email, str) or not isinstance(password, str):
            abort(400, "the e-mail address and the password must be strings")
        account_key = "login:account:" + normalize_email(email)
        address = client_address(request)
        address_key = None if address is None else "login:address:" + address
        for key, limit in ((account_key, self.account_limit), (address_key, self.address_limit)):
            wait = None if key is None else self.limiter.hit(key, limit, request=request)
            if wait is not None:
                abort(
                    429,
                    f"too many failed sign-ins; try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
        user = self.find_user(email)
        stored = user.password_hash if user is not None else None
        self.db.release()
        # Verified before looking at the user, so an unknown account costs the same time.
        matches = verify_password(password, stored, rounds=self.password_rounds)
        if matches and user is not None and user.is_active:
            self.limiter.reset(account_key, request=request)
            if address_key is not None:
                self.limiter.forgive(address_key, self.address_limit, request=request)
            if needs_rehash(user.password_hash, rounds=self.password_rounds):
                user.password_hash = hash_password(password, rounds=self.password_rounds)
                user.save(only=[self.User.password_hash])
            return user
        return None

    def login(self, request: Request, user: Any) -> None:
        """Make ``user`` the user of this browser session.

        The session's secrets (the CSRF secret) are replaced, so a value planted or learned
        before the login is worthless after it.
        """
        session = request.session
        session.rotate()
        session[_SESSION_USER] = user.id
        session[_SESSION_EPOCH] = user.session_epoch
        if self.revoked is not None:
            session[_SESSION_ID] = secrets.token_urlsafe(16)
        request.user = user

    def logout(self, request: Request) -> None:
        """End this browser's session, and every copy of its cookie, on every host."""
        session = request.session
        session_id = session.get(_SESSION_ID)
        if self.revoked is not None and isinstance(session_id, str):
            self.revoked.revoke(session_id)
        session.clear()
        request.user = ANONYMOUS

    # --- who is asking ------------------------------------------------------------------------

    def _user_of_request(self, request: Request) -> Any:
        user = self._load_user(request)
        if user is not ANONYMOUS:  # log records made from now on name the user
            request.environ["microback.user_id"] = user.id
        return user

    def _load_user(self, request: Request) -> Any:
        authorization = request.headers.get("Authorization", "")
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() == "bearer":
            found = self.tokens.authenticate(credential.strip())
            if found is None:
                return ANONYMOUS
            request.environ["microback.token"] = found
            return found.user if found.user.is_active else ANONYMOUS
        session = request.session
        user_id = session.get(_SESSION_USER)
        if user_id is None:
            return ANONYMOUS
        session_id = session.get(_SESSION_ID)
        if self.revoked is not None and not isinstance(session_id, str):
            return ANONYMOUS  # a cookie from before session ids: it cannot be revoked
        user = self._user_of_session(user_id, session_id)
        if user is None or not user.is_active or user.session_epoch != session.get(_SESSION_EPOCH):
            return ANONYMOUS
        return user

    def _user_of_session(self, user_id: Any, session_id: str | None) -> Any | None:
        """Give the user of a session whose id was not revoked, in one query.

        The query runs on every signed-in request, and peewee takes longer to build its SQL
        than SQLite takes to run it, so the SQL is built once per database and reused.
        """
        database = self.db.database
        if self._session_query is None or self._session_query[0] is not database:
            query = self.User.select().where(self.User.id == 0)
            if self.revoked is not None:
                query = query.where(self.revoked.not_revoked(""))
            sql, params = query.limit(1).sql()  # parameters: 0, [""], the limit
            self._session_query = (database, sql, params[1 + (self.revoked is not None) :])
        _, sql, rest = self._session_query
        values = [self.User.id.db_value(user_id)]
        if self.revoked is not None:
            values.append(session_id)
        return next(iter(self.User.raw(sql, *values, *rest)), None)

    # --- one-time signed links ----------------------------------------------------------------

    def _fingerprint(self, user: Any, key: str) -> str:
        # Changes whenever the password, the sessions or the verified address change: a
        # reset or verification link stops working once it has been used. Keyed, because the
        # token's payload is signed, not hidden, and the password hash is part of the state.
        state = f"{user.id}|{user.email}|{user.password_hash}|{user.session_epoch}|"
        state += str(user.email_verified)
        return hmac.new(key.encode(), state.encode(), hashlib.sha256).hexdigest()[:32]

    def make_link_token(self, user: Any, purpose: str) -> str:
        """Sign a token for a one-time link (``"password-reset"``, ``"verify-email"``)."""
        fingerprint = self._fingerprint(user, self._link_keys[0])
        return self._signer.dumps([user.id, fingerprint], salt=f"auth.{purpose}")

    def check_link_token(self, token: str, purpose: str, *, max_age: int) -> Any | None:
        """Give the user a link token was made for, or None if forged, expired or used."""
        try:
            user_id, fingerprint = self._signer.loads(
                token, salt=f"auth.{purpose}", max_age=max_age
            )
        except (BadSignature, ValueError, TypeError):
            return None
        user = self.User.get_or_none(self.User.id == user_id)
        if user is None:
            return None
        matches = [
            hmac.compare_digest(str(fingerprint), self._fingerprint(user, key))
            for key in self._link_keys
        ]
        return user if any(matches) else None

    def reset_password(self, token: str, password: str, *, max_age: int = 3600) -> Any | None:
        """Set a new password from a reset link; None if the link is bad, expired or used."""
        user = self.check_link_token(token, "password-reset", max_age=max_age)
        if user is not None:
            self.set_password(user, password)
        return user

    def verify_email(self, token: str, *, max_age: int = 3 * 86400) -> Any | None:
        """Mark the address verified from a link; None if the link is bad, expired or used."""
        user = self.check_link_token(token, "verify-email", max_age=max_age)
        if user is not None:
            user.email_verified = True
            user.save(only=[self.User.email_verified])
        return user
