"""What the OpenAPI document says of one route, read from its handler and the app.

Everything here is read, never guessed: the declared input and output are the ones the app
validates and encodes with (:mod:`microback.validation`, :mod:`microback.declared_output`),
and the guards are known by the marks their decorators leave (``@login_required``,
``@requires_role``, ``@requires_scope``, ``@rate_limit``, ``@csrf_exempt``), on the handler
or on any function it wraps. What the code cannot show (a 201, a 404 a handler raises, tags)
is told with :func:`operation`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..app import App
from ..declared_output import declared_output
from ..http import SAFE_METHODS
from ..routing import BaseConverter, _wrapped_chain
from ..validation import Body, Form, input_parameters
from ..validation.model import is_pydantic, marker, strip

__all__ = ["Declared", "Operation", "RouteFacts", "operation", "route_facts"]

_F = TypeVar("_F", bound=Callable[..., Any])
_MARK = "microback_openapi"


@dataclass(frozen=True)
class Operation:
    """What :func:`operation` told about a handler."""

    status: int | None = None
    responses: Mapping[int, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    summary: str | None = None
    description: str | None = None
    deprecated: bool = False
    include: bool = True


def operation(
    *,
    status: int | None = None,
    responses: Mapping[int, str] | None = None,
    tags: Iterable[str] = (),
    summary: str | None = None,
    description: str | None = None,
    deprecated: bool = False,
    include: bool = True,
) -> Callable[[_F], _F]:
    """Tell the OpenAPI document what the code cannot show about a handler.

    ``status`` is the status of its success (``201`` for ``return note, 201``; 200 by
    default), ``responses`` the errors it raises itself (``{404: "no note with this id"}``),
    answered as problem documents. ``tags`` group it (a named ``Router`` is a tag already);
    ``summary`` and ``description`` replace its docstring; ``include=False`` leaves it out.
    Put it under the route decorator, with the other decorators.
    """
    for code in responses or {}:
        if not 100 <= code <= 599:
            raise ValueError(f"operation(responses=...) takes statuses from 100 to 599: {code}")
    if status is not None and not 200 <= status <= 399:
        raise ValueError(f"operation(status=...) is a success from 200 to 399, not {status}")
    told = Operation(
        status, dict(responses or {}), tuple(tags), summary, description, deprecated, include
    )

    def decorator(handler: _F) -> _F:
        setattr(handler, _MARK, told)
        return handler

    return decorator


@dataclass(frozen=True)
class Declared:
    """One value a handler declares it reads (:class:`~microback.validation.InputParameter`),
    and whether a body refuses unknown fields."""

    location: str  # "body", "query", "header" or "form"
    name: str
    type: Any
    required: bool
    model: Any  # the whole body type, or the query, header or form model
    closed: bool  # a body or form that refuses unknown fields
    ignore: tuple[str, ...] = ()  # the names a form accepts beyond its fields (csrf_token)


@dataclass
class RouteFacts:
    """One method of one route, with everything the document says about it."""

    method: str
    path: str
    endpoint: str
    handler: Callable[..., Any]
    converters: list[tuple[str, BaseConverter]]
    inputs: list[Declared]
    output: Any  # the declared return type, or None
    told: Operation
    login: bool = False
    roles: list[frozenset[str]] = field(default_factory=list)
    scopes: frozenset[str] = frozenset()
    rate_limit: str | None = None
    csrf: bool = False  # the CSRF check applies (unsafe method, Csrf set up, not exempt)
    database: bool = False  # the app has a database

    @property
    def unsafe(self) -> bool:
        return self.method not in SAFE_METHODS

    def declared(self, location: str) -> list[Declared]:
        """The declared values read from ``location``."""
        return [item for item in self.inputs if item.location == location]


def _inputs(handler: Callable[..., Any]) -> list[Declared]:
    found: list[Declared] = []
    for item in input_parameters(handler):
        where = marker(item.model)
        # A pydantic model refuses unknown fields when its config says so (extra="forbid"),
        # and then its own schema says so too.
        closed = (
            isinstance(where, Body | Form)
            and where.forbid_unknown_fields
            and not is_pydantic(strip(item.model)[0])
        )
        ignore = where.ignore if isinstance(where, Form) else ()
        found.append(
            Declared(
                item.location, item.name, item.type, item.required, item.model, closed, ignore
            )
        )
    return found


def _marks(handler: Callable[..., Any], name: str) -> list[Any]:
    """The values of mark ``name`` on ``handler`` and each function it wraps, outermost first."""
    found: list[Any] = []
    for function in _wrapped_chain(handler):
        value = getattr(function, name, None)
        if value is not None and value not in found:
            found.append(value)
    return found


def route_facts(app: App) -> list[RouteFacts]:
    """The facts of every route of ``app`` and each of its methods, HEAD and OPTIONS aside."""
    csrf = app.extensions.get("csrf")
    facts: list[RouteFacts] = []
    for route in app.routes:
        handler = app.handler_for(route.endpoint)
        if handler is None:
            continue
        told = next(iter(_marks(handler, _MARK)), Operation())
        if not told.include:
            continue
        output = declared_output(handler)
        inputs = _inputs(handler)
        roles = _marks(handler, "microback_roles")
        scopes = frozenset().union(*_marks(handler, "microback_scopes"))
        exempt = bool(_marks(handler, "csrf_exempt"))
        for method in sorted(route.methods - {"HEAD", "OPTIONS"} or route.methods):
            facts.append(
                RouteFacts(
                    method=method,
                    path=route.path,
                    endpoint=route.endpoint,
                    handler=inspect.unwrap(handler),
                    converters=app.path_converters(route.path),
                    inputs=inputs,
                    output=None if output is None else output.type,
                    told=told,
                    login=bool(roles or scopes or _marks(handler, "microback_login_required")),
                    roles=roles,
                    scopes=scopes,
                    rate_limit=next(iter(_marks(handler, "microback_rate_limit")), None),
                    csrf=csrf is not None and method not in SAFE_METHODS and not exempt,
                    database="db" in app.extensions,
                )
            )
    return facts
