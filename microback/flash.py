"""Flash messages: a line for the next page the user sees ("Task saved."), kept in the session.

A handler that redirects after a form post cannot show anything itself, so it leaves the
message in the session and the page it redirects to shows it: ``flash(request, "Saved.")``,
then ``get_flashed_messages()`` in that page's template. Reading the messages removes them,
so each is shown once. They live in whatever session the app has (the signed cookie of
``CookieSessions`` or the rows of ``DatabaseSessions``); a login keeps them (rotating the
session drops only its secrets), a logout clears them with the rest of the session.
"""

from __future__ import annotations

from typing import Any

from .http import Request

__all__ = ["flash", "get_flashed_messages"]

#: The session key of the pending messages: a list of ``[category, message]`` pairs.
SESSION_KEY = "_flashes"
# Where the messages taken from the session wait for the rest of the request.
_TAKEN = "microback.flashes"


def _session(request: Request) -> Any:
    try:
        return request.session
    except AttributeError:
        raise RuntimeError(
            "flash messages are kept in the session: create CookieSessions(app) or "
            "DatabaseSessions(app, db) (Auth(app, db) creates cookie sessions) before using them"
        ) from None


def flash(request: Request, message: str, category: str = "info") -> None:
    """Keep ``message`` for the next page shown to this user.

    ``category`` is free text for the template to style the message by (``"info"``,
    ``"error"``, ...). Messages wait in the session until read, so they survive a redirect.
    """
    if not isinstance(message, str) or not isinstance(category, str):
        raise TypeError("flash() takes a message and a category that are strings")
    session = _session(request)
    # Assigned, not appended in place: the session sees only assignments as changes.
    session[SESSION_KEY] = [*session.get(SESSION_KEY, ()), [category, message]]


def get_flashed_messages(
    request: Request, *, with_categories: bool = False
) -> list[str] | list[tuple[str, str]]:
    """Take the messages flashed for this user, oldest first; later requests will not see them.

    With ``with_categories=True`` each is a ``(category, message)`` pair. Calls in the same
    request give the same messages (a layout and a page may both ask). A request without
    messages does not change the session, so it sets no cookie.
    """
    pairs: list[tuple[str, str]] | None = request.environ.get(_TAKEN)
    if pairs is None:
        session = _session(request)
        pending = session.pop(SESSION_KEY) if SESSION_KEY in session else ()
        pairs = [(str(category), str(message)) for category, message in pending]
        request.environ[_TAKEN] = pairs
    if with_categories:
        return pairs
    return [message for _, message in pairs]
