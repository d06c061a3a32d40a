"""``Idempotency``: a POST retried with the same ``Idempotency-Key`` runs once.

Stripe's semantics with the IETF draft's header (draft-ietf-httpapi-idempotency-key-header).
The first request with a key *claims* it: a row in ``microback_idempotency_key`` committed at
once, before the handler runs, so a second worker (or host) sees it. The handler's answer is
written into that row **inside the request's transaction**, so it commits together with the
handler's own writes, or not at all: there is no moment when the order exists and the key
says "not done", nor the reverse. A repeat with the same key then gets the stored answer; a
repeat while the first still runs gets 409; the same key on a different request gets 422.

An answer that is not final is not stored (5xx, and 408, 409, 425, 429: try again later):
the claim is deleted once the request has ended, its writes rolled back, and the client may
retry with the same key. A claim whose worker died mid-request is taken over after
``lock_timeout``; the first worker, if it was only slow, then finds the key no longer its own
when it tries to store its answer, and its transaction is rolled back (409), so the handler's
writes still commit once. A request without a request transaction (``@non_atomic``) has
nothing to roll back: its key is never taken over, and stays 409 until it expires.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import peewee
from werkzeug.exceptions import BadRequest, Conflict, HTTPException, UnprocessableEntity

from ..http import Response, error_response

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as WerkzeugResponse

    from ..app import App
    from ..db import Database
    from ..http import Request

__all__ = ["Idempotency", "LargeBlobField", "default_scope"]

logger = logging.getLogger("microback.idempotency")

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Answers that say "try again" rather than "this is the outcome": never stored.
NOT_FINAL = frozenset({401, 408, 409, 425, 429})
#: Headers of a stored answer that a replay repeats; cookies and per-response headers are not.
KEPT_HEADERS = ("Content-Type", "Location", "Content-Location", "ETag", "Last-Modified", "Link")
MAX_KEY_LENGTH = 255
RUNNING, DONE = "running", "done"
_CLAIM = "microback.idempotency.claim"
_OPT = "microback_idempotent"
_F = TypeVar("_F", bound=Callable[..., Any])


class LargeBlobField(peewee.BlobField):
    """A blob of up to 4 GiB everywhere: MariaDB's ``BLOB`` stops at 64 KiB."""

    def ddl_datatype(self, ctx: Any) -> Any:
        database = self.model._meta.database
        database = getattr(database, "obj", database)  # through the Database's proxy
        if isinstance(database, peewee.MySQLDatabase):
            return peewee.SQL("LONGBLOB")
        return super().ddl_datatype(ctx)


def default_scope(request: Request) -> str:
    """Whose keys these are: the logged-in user, else the ``Authorization`` credential.

    Requests with neither share one scope ("anonymous"): give ``scope=`` to tell them apart
    (by an API key header, for instance) if such clients send keys.
    """
    user = getattr(request, "user", None)  # set by Auth, when the app has it
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.id}"
    credential = request.headers.get("Authorization")
    if credential:
        return "authorization:" + hashlib.sha256(credential.encode()).hexdigest()
    return "anonymous"


class _Claim:
    """The key this request holds, and what its answer turned out to be."""

    __slots__ = ("answer", "attempted", "handler_started", "row_id", "token", "wrapped")

    def __init__(self, row_id: int, token: str, wrapped: bool) -> None:
        self.row_id = row_id
        self.token = token
        self.wrapped = wrapped
        # An answer is the outcome only if the handler made it, not a later before_request
        # hook (CSRF, a rate limit); the route's wrapper says when it starts. Without one
        # (all_routes), every answer of the request counts.
        self.handler_started = not wrapped
        self.attempted = False  # its answer was written (committed or not)
        self.answer: tuple[int, str, bytes] | None = None  # to store after a rollback


class Idempotency:
    """``Idempotency-Key`` for unsafe requests: ``idempotency = Idempotency(app, db)``.

    Opt a route in with ``@idempotency.route`` (under the route decorator), or every unsafe
    route of the app with ``all_routes=True``. A request without the header runs as usual,
    unless ``required=True`` (then it is a 400). Keys live ``expire`` seconds (24 hours by
    default, as Stripe's) and belong to a ``scope``: by default the user, or the credential
    of the ``Authorization`` header (see :func:`default_scope`). Create the table with the
    app's others (``db.create_tables()`` or ``microback db new --auto``); it must be created
    after the ``Database`` is attached to the app.
    """

    def __init__(
        self,
        app: App | None = None,
        db: Database | None = None,
        *,
        all_routes: bool = False,
        required: bool = False,
        expire: float = 24 * 3600.0,
        lock_timeout: float = 300.0,
        scope: Callable[[Request], str] = default_scope,
    ) -> None:
        if db is None:
            raise TypeError("Idempotency needs the app's Database: Idempotency(app, db)")
        if expire <= 0 or lock_timeout <= 0:
            raise ValueError("expire and lock_timeout must be positive numbers of seconds")
        self.db = db
        self.all_routes = all_routes
        self.required = required
        self.expire = float(expire)
        self.lock_timeout = float(lock_timeout)
        self.scope = scope

        class IdempotencyKey(db.Model):  # type: ignore[name-defined, misc]
            # sha256 of scope and key: one short unique column whatever their lengths.
            lookup = peewee.CharField(max_length=64, unique=True)
            fingerprint = peewee.CharField(max_length=64)
            state = peewee.CharField(max_length=10, default=RUNNING)
            token = peewee.CharField(max_length=32)
            locked_until = peewee.DoubleField()
            expires_at = peewee.DoubleField(index=True)
            status = peewee.IntegerField(null=True)
            headers = peewee.TextField(null=True)
            body = LargeBlobField(null=True)

            class Meta:
                table_name = "microback_idempotency_key"

        self.model = IdempotencyKey
        if app is not None:
            self.init_app(app)

    def init_app(self, app: App) -> None:
        """Hook into ``app``: claim a key before the handler, release it at the end."""
        app.extensions["idempotency"] = self
        app.before_request(self._claim)
        app.after_request(self._store)
        app.teardown(self._release)

    def route(self, handler: _F) -> _F:
        """Make this route honour ``Idempotency-Key`` (put it under the route decorator)."""

        @functools.wraps(handler)
        def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            claim: _Claim | None = request.environ.get(_CLAIM)
            if claim is not None:
                claim.handler_started = True
            return handler(request, *args, **kwargs)

        setattr(wrapper, _OPT, True)
        return wrapper  # type: ignore[return-value]

    def purge(self, now: float | None = None) -> int:
        """Delete the expired keys; return how many. Claims also do it, now and then."""
        now = time.time() if now is None else now
        return int(self.model.delete().where(self.model.expires_at < now).execute())

    # --- the hooks ----------------------------------------------------------------------------

    def _applies(self, request: Request) -> bool | None:
        """None: not for this request; True: an ``@idempotency.route``; False: ``all_routes``."""
        if request.method not in UNSAFE_METHODS or request.endpoint is None:
            return None
        if getattr(request.app.handler_for(request.endpoint), _OPT, False) is True:
            return True
        return False if self.all_routes else None

    def _claim(self, request: Request) -> Response | None:
        wrapped = self._applies(request)
        if wrapped is None:
            return None
        raw = request.headers.get(HEADER)
        if raw is None:
            if self.required:
                raise BadRequest(f"this endpoint needs an {HEADER} header (a unique string)")
            return None
        key = _parse_key(raw)
        lookup = hashlib.sha256(f"{self.scope(request)}\n{key}".encode()).hexdigest()
        fingerprint = _fingerprint(request)
        # Committed at once, outside the request's transaction (which has not begun): the
        # claim must be seen by other workers while this request runs.
        with self.db.independent():
            if random.random() < 0.01:  # noqa: S311 (not a secret: when to tidy up)
                self.purge()
            return self._take(request, lookup, fingerprint, wrapped)

    def _take(
        self, request: Request, lookup: str, fingerprint: str, wrapped: bool
    ) -> Response | None:
        model = self.model
        for _ in range(3):  # a row that expires or is deleted between two statements
            now = time.time()
            token = secrets.token_hex(16)
            try:
                row_id = model.insert(
                    lookup=lookup,
                    fingerprint=fingerprint,
                    token=token,
                    locked_until=now + self.lock_timeout,
                    expires_at=now + self.expire,
                ).execute()
            except peewee.IntegrityError:
                pass
            else:
                self._hold(request, _Claim(int(row_id), token, wrapped))
                return None
            row = model.get_or_none(model.lookup == lookup)
            if row is None:
                continue
            if row.expires_at <= now:
                model.delete().where((model.id == row.id) & (model.token == row.token)).execute()
                continue
            if row.fingerprint != fingerprint:
                raise UnprocessableEntity(
                    f"this {HEADER} was used for a different request (another method, path "
                    "or body); use a new key for a new request"
                )
            if row.state == DONE:
                return _replay(row)
            if row.locked_until > now:
                raise _in_progress(row.locked_until - now)
            if not self.db.request_is_atomic(request):
                # Its writes commit as they are made, and a slow first request cannot be
                # rolled back: taking over could run the handler twice, or after a first run
                # that died half-way. Held until it expires; never run twice.
                logger.warning(
                    "%s %s: an idempotency key held past lock_timeout (%.0f s) on a route "
                    "without a request transaction is not taken over; it expires in %.0f s",
                    request.method, request.path, self.lock_timeout, row.expires_at - now,
                )  # fmt: skip
                raise _in_progress(row.expires_at - now)
            # Its worker died (or is too slow): take the key over, unless another did first.
            taken = (
                model.update(token=token, locked_until=now + self.lock_timeout)
                .where((model.id == row.id) & (model.token == row.token))
                .execute()
            )
            if taken:
                logger.warning(
                    "%s %s: took over an idempotency key held past lock_timeout (%.0f s)",
                    request.method, request.path, self.lock_timeout,
                )  # fmt: skip
                self._hold(request, _Claim(row.id, token, wrapped))
                return None
        raise _in_progress(1.0)

    def _hold(self, request: Request, claim: _Claim) -> None:
        request.environ[_CLAIM] = claim
        self.db.before_commit(request, functools.partial(self._store_in_transaction, request))

    def _store(self, request: Request, response: WerkzeugResponse) -> WerkzeugResponse | None:
        # An after_request hook: it runs after the Database's, so after the request's
        # transaction has committed or rolled back. What commits with the handler's writes
        # is stored by _store_in_transaction (db.before_commit); this stores the rest.
        claim: _Claim | None = request.environ.get(_CLAIM)
        if claim is None or claim.attempted or not _final(response, claim):
            return None
        answer = (response.status_code, _kept_headers(response), response.get_data())
        if request.exception is not None:
            # A final answer after a rollback (an abort(422), say): stored alone, at teardown.
            # Without the route's wrapper, who raised it is unknown (a CSRF check?): not
            # stored, and a retry runs again; the failed request's writes were rolled back.
            if claim.wrapped:
                claim.answer = answer
            return None
        # No request transaction (a @non_atomic route, atomic_requests=False): stored now.
        try:
            with self.db.independent():
                self._write(request, claim, response)
        except HTTPException as lost:
            request.exception = lost  # its writes have committed already: only log and say so
            return error_response(request, lost)
        return None

    def _store_in_transaction(self, request: Request, response: WerkzeugResponse) -> None:
        claim: _Claim = request.environ[_CLAIM]
        if _final(response, claim):
            self._write(request, claim, response)

    def _write(self, request: Request, claim: _Claim, response: WerkzeugResponse) -> None:
        claim.attempted = True
        model = self.model
        stored = (
            model.update(
                state=DONE,
                status=response.status_code,
                headers=_kept_headers(response),
                body=response.get_data(),
            )
            .where((model.id == claim.row_id) & (model.token == claim.token))
            .execute()
        )
        if stored:
            return
        # Another request took the key over while this one ran past lock_timeout: this one
        # must not commit too. Raised inside the transaction, this rolls it back.
        logger.error(
            "%s %s ran longer than the idempotency lock_timeout (%.0f s) and another request "
            "took its key over; its writes are rolled back",
            request.method, request.path, self.lock_timeout,
        )  # fmt: skip
        raise _in_progress(1.0)

    def _release(self, request: Request, error: BaseException | None) -> None:
        claim: _Claim | None = request.environ.pop(_CLAIM, None)
        if claim is None:
            return
        model = self.model
        mine = (model.id == claim.row_id) & (model.token == claim.token) & (model.state == RUNNING)
        try:
            with self.db.independent():
                if claim.answer is not None:
                    status, headers, body = claim.answer
                    model.update(state=DONE, status=status, headers=headers, body=body).where(
                        mine
                    ).execute()
                else:
                    # Not stored, or stored and then not committed: let the client retry. A
                    # committed answer has state 'done' and stays.
                    model.delete().where(mine).execute()
        finally:
            self.db.release()


def _final(response: WerkzeugResponse, claim: _Claim) -> bool:
    status = response.status_code
    return claim.handler_started and status < 500 and status not in NOT_FINAL


def _parse_key(raw: str) -> str:
    # The draft sends an sf-string ("..."); Stripe's clients send the bare value.
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise BadRequest(
            f"the {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
            "(a UUID, for instance)"
        )
    return key


def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1")):
        digest.update(part.encode() + b"\0")
    digest.update((request.mimetype or "").encode() + b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _kept_headers(response: WerkzeugResponse) -> str:
    kept: Iterable[tuple[str, str]] = (
        (name, value) for name, value in response.headers.items() if name in KEPT_HEADERS
    )
    return json.dumps(list(kept))


def _replay(row: Any) -> Response:
    body = row.body
    response = Response(bytes(body) if body is not None else b"", status=row.status)
    response.headers.remove("Content-Type")
    for name, value in json.loads(row.headers or "[]"):
        response.headers.add(name, value)
    response.headers[REPLAYED] = "true"
    return response


def _in_progress(retry_after: float) -> HTTPException:
    conflict = Conflict(
        f"a request with this {HEADER} is still being processed; retry after it has finished"
    )
    seconds = str(max(1, int(retry_after + 0.999)))
    conflict.extra_headers = [("Retry-After", seconds)]  # type: ignore[attr-defined]
    return conflict
