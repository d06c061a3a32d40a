"""Who may call a handler: ``@login_required``, ``@requires_role``, ``@requires_scope``.

Refusals follow what the client can act on: an anonymous API client gets 401 (with
``WWW-Authenticate: Bearer``), an anonymous browser is sent to the login page when the app
has one, and a signed-in user without the right gets 403. Objects that belong to someone
else are answered 404 by :func:`owned_or_404`, so their existence is not revealed.

An API token reaches only routes that declare a scope with :func:`requires_scope`, and only
with that scope: a token made to read notes cannot call a ``@login_required`` route that
deletes them. A route that declares no scope is for sessions only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import peewee

from ..http import Request, abort, prefers_json, redirect
from ..routing import guard_handler

__all__ = ["login_required", "owned_by", "owned_or_404", "requires_role", "requires_scope"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _route_scopes(request: Request) -> frozenset[str]:
    # Read from the handler registered for the route: functools.wraps copies the mark onto
    # every decorator above @requires_scope, and @requires_scope sets it on its own wrapper.
    handler = request.app.handler_for(request.endpoint) if request.endpoint else None
    return frozenset(getattr(handler, "microback_scopes", ()))


def _require_login(request: Request) -> Any:
    user = request.user
    if user.is_authenticated:
        if "microback.token" in request.environ and not _route_scopes(request):
            abort(403, "API tokens cannot call this route: it declares no scope")
        return None
    auth = request.app.extensions.get("auth")
    if auth is not None and auth.login_url and not prefers_json(request):
        target = request.full_path.rstrip("?")
        return redirect(f"{auth.login_url}?next={quote(target, safe='/')}", 303)
    if "microback.token" in request.environ or request.headers.get("Authorization"):
        message = "the token is invalid, expired or revoked"
    else:
        message = "log in, or send an API token in the Authorization: Bearer header"
    abort(401, message, headers={"WWW-Authenticate": 'Bearer realm="api"'})


def login_required(handler: _F) -> _F:
    """Call ``handler`` only for a signed-in user: by session, or by an API token when the
    route also declares a scope the token has (:func:`requires_scope`)."""

    guarded = guard_handler(handler, "@login_required", _require_login)
    guarded.microback_login_required = True  # type: ignore[attr-defined]  # read by openapi
    return guarded


def requires_role(*roles: str) -> Callable[[_F], _F]:
    """Call the handler only for a user with one of ``roles`` (checked on every request)."""
    if not roles:
        raise ValueError("requires_role() needs at least one role name")
    wanted = " or ".join(repr(role) for role in roles)

    def check(request: Request) -> Any:
        refusal = _require_login(request)
        if refusal is None and not request.user.has_role(*roles):
            abort(403, f"this needs the role {wanted}")
        return refusal

    def decorator(handler: _F) -> _F:
        name = f"@requires_role({', '.join(repr(role) for role in roles)})"
        guarded = guard_handler(handler, name, check)
        guarded.microback_roles = frozenset(roles)  # type: ignore[attr-defined]
        return guarded

    return decorator


def requires_scope(scope: str) -> Callable[[_F], _F]:
    """Refuse (403) a request made with an API token that lacks ``scope``.

    Requests signed in by session are not limited by scopes: scopes narrow what a token
    may do, not what its owner may.
    """

    def check(request: Request) -> Any:
        refusal = _require_login(request)
        token = request.environ.get("microback.token")
        if refusal is None and token is not None and scope not in token.scope_names:
            abort(403, f"the token lacks the scope {scope!r}")
        return refusal

    def decorator(handler: _F) -> _F:
        guarded = guard_handler(handler, f"@requires_scope({scope!r})", check)
        guarded.microback_scopes = frozenset(  # type: ignore[attr-defined]
            {*getattr(handler, "microback_scopes", ()), scope}
        )
        return guarded

    return decorator


def owned_or_404(
    model: Any, request: Request, *query: Any, owner: str = "owner", members: Any = None
) -> Any:
    """Give the row of ``model`` matching ``query`` that belongs to ``request.user``, or 404.

    Someone else's row and a missing row get the same answer, so ids cannot be probed.
    With ``members``, the row belongs to a group rather than a user (see :func:`owned_by`):
    ``owned_or_404(Task, request, Task.id == task_id, owner="team", members=Membership)``
    gives the task to any member of its team.
    """
    return model.get_or_404(*query, owned_by(model, request.user, owner=owner, members=members))


def owned_by(model: Any, user: Any, *, owner: str = "owner", members: Any = None) -> Any:
    """The condition, for ``.where()``, that a row of ``model`` belongs to ``user``.

    ``owner`` names the field of ``model`` that says whose the row is. Without ``members``
    it points at the user. With ``members``, a model that links users to groups (a
    ``Membership`` with one foreign key to the group model and one to the user model), it
    points at a group, and the row belongs to every member of that group::

        Task.select().where(owned_by(Task, request.user, owner="team", members=Membership))

    ``owner`` may also name the group model's own primary key (``owned_by(Team, user,
    owner="id", members=Membership)``: the teams the user is in). Nobody signed in owns
    nothing.
    """
    field = getattr(model, owner, None)
    if not isinstance(field, peewee.Field):
        raise ValueError(f"{model.__name__} has no field {owner!r}; pass owner= to name it")
    if members is None:
        return field == user if user.is_authenticated else field.in_([])
    group = field.rel_model if isinstance(field, peewee.ForeignKeyField) else field.model
    group_key, user_key = _membership_keys(members, group, user)
    if not user.is_authenticated:
        return field.in_([])
    return field.in_(members.select(group_key).where(user_key == user))


def _membership_keys(members: Any, group: Any, user: Any) -> tuple[Any, Any]:
    """The foreign keys of ``members`` to ``group`` and to the user's model."""
    keys = [f for f in members._meta.sorted_fields if isinstance(f, peewee.ForeignKeyField)]
    to_group = [key for key in keys if key.rel_model is group]
    to_user = [
        key
        for key in keys
        if key.rel_model is not group
        and (not user.is_authenticated or isinstance(user, key.rel_model))
    ]
    if len(to_group) != 1 or len(to_user) != 1:
        found = ", ".join(f"{key.name} -> {key.rel_model.__name__}" for key in keys) or "none"
        raise ValueError(
            f"members={members.__name__} needs one foreign key to {group.__name__} and one "
            f"to the user model; its foreign keys: {found}"
        )
    return to_group[0], to_user[0]
