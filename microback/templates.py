"""HTML pages from Jinja2 templates: ``Templates(app)``, then ``render(request, "page.html")``.

Jinja2 is an optional extra (``pip install 'microback[templates]'``); ``microback`` imports
this module on first use of ``microback.Templates`` or ``microback.render``, so an app without
templates does not import Jinja2. Autoescaping is on for ``.html``, ``.htm`` and ``.xml``
templates (and for templates given as strings): a value is escaped unless it is marked safe,
so a user's text cannot become markup.

Every template sees, besides what the handler passes:

- ``request``, and ``current_user`` (``request.user``; looked up only when a template uses it,
  so a page that does not show the user does not load it);
- ``csrf_field()``, the hidden form input with a CSRF token, and ``csrf_token()``;
- ``url_for(endpoint, **values)``, the app's URL building, and ``static_url(path)`` for a file
  served by :class:`~microback.static.Static`;
- ``get_flashed_messages(with_categories=False)`` (:mod:`microback.flash`).

A template that fails is an unexpected error like any other: the client gets a plain 500 and
the log gets the traceback, where Jinja2 shows the template's file and line as a frame.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

try:
    import jinja2
    from markupsafe import Markup
except ImportError as exc:  # the extra is not installed
    raise ImportError(
        "microback's templates need Jinja2: pip install 'microback[templates]'"
    ) from exc

from .app import App
from .flash import get_flashed_messages
from .folders import app_folder
from .http import HeadersLike, Request, Response
from .security.csrf import csrf_token

__all__ = ["Templates", "render"]

#: The extensions whose templates are escaped (HTML and XML); others (``.txt``) are not.
AUTOESCAPED = ("html", "htm", "xml")


class Templates:
    """Render Jinja2 templates from ``directory`` for ``app``'s handlers (:func:`render`).

    ``directory`` may be absolute, or relative to the folder of the module that creates
    ``Templates`` (``templates/`` beside ``app.py``). ``auto_reload`` (by default the app's
    ``debug`` setting) re-reads a template whose file changed; without it each template is
    read once per process. ``environment`` is Jinja2's, for adding filters and globals::

        templates = Templates(app)
        templates.environment.filters["money"] = lambda cents: f"{cents / 100:.2f}"
    """

    def __init__(
        self,
        app: App,
        directory: str | Path = "templates",
        *,
        auto_reload: bool | None = None,
    ) -> None:
        self.directory = app_folder(directory, "Templates")
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.directory),
            autoescape=jinja2.select_autoescape(AUTOESCAPED, default_for_string=True),
            auto_reload=app.settings.debug if auto_reload is None else auto_reload,
            # The file ends as written: a trailing newline is not dropped.
            keep_trailing_newline=True,
        )
        environment.context_class = _Context
        environment.globals.update(_REQUEST_GLOBALS)
        self.environment = environment
        app.extensions["templates"] = self

    def render(self, request: Request, name: str, context: Mapping[str, Any]) -> str:
        """Render the template ``name`` for ``request`` with ``context``; return the text."""
        template = self.environment.get_template(name)
        return template.render({**context, "request": request})


def render(
    request: Request,
    name: str,
    /,
    *,
    status: int = 200,
    headers: HeadersLike | None = None,
    **context: Any,
) -> Response:
    """Answer with the template ``name`` rendered with ``context``, from the app's Templates.

    The Content-Type follows the template's extension (``text/html; charset=utf-8`` for
    ``.html``). ``status`` and ``headers`` set the response's, so they cannot be template
    variables; ``name`` can, the first two arguments being positional-only. A template that
    does not exist raises ``jinja2.TemplateNotFound``, which names the folder searched.
    """
    templates = request.app.extensions.get("templates")
    if not isinstance(templates, Templates):
        raise RuntimeError("render() needs the app's templates: create Templates(app) first")
    body = templates.render(request, name, context).encode()
    return Response.buffered(body, status, _content_type(name), headers)


def _content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    kind = guessed or "text/html"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith("xml") else kind


# --- what every template sees -----------------------------------------------------------------


class _Context(jinja2.runtime.Context):
    """A Jinja2 context that finds ``current_user`` on the request when a template asks."""

    def resolve_or_missing(self, key: str) -> Any:
        value = super().resolve_or_missing(key)
        if key != "current_user" or value is not jinja2.utils.missing:
            return value
        # request.user is there when Auth is; without it, current_user is undefined.
        return getattr(super().resolve_or_missing("request"), "user", jinja2.utils.missing)


def _request(context: jinja2.runtime.Context) -> Request:
    request: Request = context["request"]
    return request


@jinja2.pass_context
def _csrf_field(context: jinja2.runtime.Context) -> Markup:
    request = _request(context)
    token = csrf_token(request)  # raises, saying what to do, when the app has no Csrf
    name = request.app.extensions["csrf"].field_name
    # Markup.format escapes what it inserts.
    return Markup('<input type="hidden" name="{}" value="{}">').format(name, token)


@jinja2.pass_context
def _csrf_token(context: jinja2.runtime.Context) -> str:
    return csrf_token(_request(context))


@jinja2.pass_context
def _url_for(context: jinja2.runtime.Context, endpoint: str, **values: Any) -> str:
    return _request(context).app.url_for(endpoint, **values)


@jinja2.pass_context
def _static_url(context: jinja2.runtime.Context, path: str) -> str:
    app = _request(context).app
    static = app.extensions.get("static")
    if static is None:
        raise RuntimeError("static_url() needs the app's static files: create Static(app)")
    return app.url_for(static.endpoint, path=path)


@jinja2.pass_context
def _flashed(context: jinja2.runtime.Context, with_categories: bool = False) -> list[Any]:
    return get_flashed_messages(_request(context), with_categories=with_categories)


_REQUEST_GLOBALS: dict[str, Callable[..., Any]] = {
    "csrf_field": _csrf_field,
    "csrf_token": _csrf_token,
    "url_for": _url_for,
    "static_url": _static_url,
    "get_flashed_messages": _flashed,
}
