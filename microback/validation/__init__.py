"""Declared input: handler parameters annotated with a type receive the request's JSON body,
query string, form or headers, validated.

``def create(request, note: NewNote)`` is enough: at registration (once, not per request) the
handler's signature is read, and a parameter whose type is a model (a dataclass, a
``TypedDict``, a ``msgspec.Struct``, a pydantic model) or is marked ``Annotated[T, Body()]``
is filled from the JSON body (:mod:`.body`); ``Annotated[M, Query()]``, ``Form()`` and
``Header()`` fill a model from the query string, the form or the headers (:mod:`.fields`).
URL values keep their converters. Handlers without such a parameter are registered unchanged
and cost what they cost before.

Every invalid field of every declared input is listed in one 422 problem document
(:mod:`.collect`): msgspec stops at the first error, so a second pass that runs only when
its single pass fails collects them all. pydantic models are validated by pydantic
(:mod:`.pydantic_models`, imported only when a declared type holds one).

What a handler declares can be read back, for an OpenAPI document or a tool, with
:func:`input_parameters`: one :class:`InputParameter` per value it reads, each saying

- ``location``: ``"body"``, ``"query"``, ``"form"`` or ``"header"`` (path values are the
  route's converters: see :mod:`microback.routing`);
- ``name``: the query parameter, form field or header name as the client sends it (a header
  in lower case), or for the body the handler's parameter name;
- ``type``: the declared type, ``Annotated`` constraints included: the whole body type, or
  one field's type;
- ``required``: whether the request must carry it;
- ``model``: the annotation of the handler parameter it fills (the body's, or the query,
  form or header model), to describe the whole object at once (a pydantic model's own JSON
  schema, for instance).

This tuple is the one description of declared input; nothing else needs to look inside the
readers.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import msgspec

from ..http import Request
from ..http.problem import Location, Problem
from .body import JSONBody
from .collect import MAX_ERRORS, failed
from .fields import FieldsInput, fields_input
from .model import Body, Form, Header, Query, fields, is_pydantic, marker, models_in, strip
from .model import refuses_unknown as _refuses_unknown

__all__ = [
    "MAX_ERRORS",
    "Body",
    "Form",
    "Header",
    "InputParameter",
    "Query",
    "declared_input",
    "input_parameters",
    "models_in",
    "with_declared_input",
]


class InputParameter(NamedTuple):
    """One value a handler declares it reads (see the module's docstring)."""

    location: Location
    name: str
    type: Any
    required: bool
    model: Any


class _Reader(typing.Protocol):
    @property
    def name(self) -> str: ...

    @property
    def type(self) -> Any: ...

    @property
    def location(self) -> Location: ...

    def read(self, request: Request) -> Any: ...


def _describe(reader: _Reader) -> list[InputParameter]:
    if not isinstance(reader, FieldsInput):
        return [InputParameter("body", reader.name, reader.type, True, reader.type)]
    declared = fields(strip(reader.type)[0])
    return [
        InputParameter(reader.location, name, field.type, field.required, reader.type)
        for (name, _, _), field in zip(reader.fields, declared, strict=True)
    ]


def input_parameters(handler: Any) -> tuple[InputParameter, ...]:
    """What a registered handler (as the route table holds it) declares it reads."""
    return tuple(getattr(handler, "__microback_input__", ()))


def _owner(target: Any) -> str:
    return getattr(target, "__qualname__", repr(target))


def _body(name: str, annotation: Any, body: Body, owner: str) -> _Reader:
    try:
        models = models_in(annotation)
    except NameError as exc:
        raise TypeError(
            f"the body parameter {name!r} of {owner} has a type whose annotations cannot "
            f"be resolved: {exc}"
        ) from None
    if any(is_pydantic(model) for model in models):
        from .pydantic_models import PydanticBody, converter

        return PydanticBody(name, annotation, converter(annotation, "body"))
    try:
        decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(annotation)
        msgspec.json.schema(annotation)  # refuses a custom type, which no JSON decodes to
    except TypeError as exc:
        raise TypeError(
            f"the body parameter {name!r} of {owner} has a type msgspec cannot decode: {exc}"
        ) from None
    # msgspec's pass refuses unknown fields only in a Struct that says so.
    forbid = body.forbid_unknown_fields
    walk = forbid and any(not _refuses_unknown(model, False) for model in models)
    return JSONBody(name, annotation, decoder, forbid, walk)


def _fields(name: str, annotation: Any, where: Query | Form | Header, owner: str) -> _Reader:
    base, _ = strip(annotation)
    kind = type(where).__name__.lower()
    try:
        models = models_in(annotation)
    except NameError as exc:
        raise TypeError(f"cannot resolve the type of {name!r}: {exc}") from None
    if base not in models:
        raise TypeError(
            f"the {kind} parameter {name!r} of {owner} must be a dataclass, TypedDict, "
            f"msgspec.Struct or pydantic model whose fields are the {kind}'s values, "
            f"got {annotation!r}"
        )
    convert = None
    if is_pydantic(base):
        from .pydantic_models import converter

        convert = converter(annotation, "header" if kind == "header" else kind)  # type: ignore[arg-type]
    else:
        # msgspec reads a type's annotations once and keeps them on it: now, while its
        # module is loaded, rather than at the first request.
        msgspec.json.Decoder(annotation)
    return fields_input(name, annotation, where, convert)


def declared_input(handler: Any, variables: Iterable[str]) -> list[_Reader]:
    """The parameters of ``handler`` filled from the request, read once at registration.

    The first parameter (the request) and the URL values are not; neither is a parameter
    whose annotation is not a model or marked, so existing handlers keep their meaning. A
    type that cannot be decoded is a ``TypeError`` here, at import time.
    """
    try:
        signature = inspect.signature(handler)
        target = inspect.unwrap(handler)
        hints = typing.get_type_hints(target, include_extras=True)
    except (TypeError, ValueError, NameError):
        return []
    skip = set(variables)
    owner = _owner(target)
    declared: list[_Reader] = []
    for position, parameter in enumerate(signature.parameters.values()):
        if position == 0 or parameter.name in skip or parameter.name not in hints:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints[parameter.name]
        where = marker(annotation)
        if where is None:
            continue
        if isinstance(where, Body):
            declared.append(_body(parameter.name, annotation, where, owner))
        else:
            declared.append(_fields(parameter.name, annotation, where, owner))
    bodies = [item.name for item in declared if item.location in ("body", "form")]
    if len(bodies) > 1:
        raise TypeError(f"{owner} declares several bodies ({', '.join(bodies)}); one at most")
    for location in ("query", "header"):
        same = [item.name for item in declared if item.location == location]
        if len(same) > 1:
            raise TypeError(
                f"{owner} declares several {location} models ({', '.join(same)}); one at most"
            )
    return declared


_ORDER = {"query": 0, "header": 1, "form": 2, "body": 3}


def with_declared_input(
    handler: Any,
    declared: list[_Reader],
    checks: Sequence[Callable[[Request], Any]] = (),
    registered: Any = None,
) -> Any:
    """``handler``, or a wrapper that fills the declared parameters before calling it.

    ``checks`` are those of the guards that ``handler`` was taken from under (``@login_required``
    and the like, outermost first): they run first, so a request they refuse gets their 401,
    403 or 429 and its input is not read. ``registered`` is the function the route was given,
    whose name and marks the wrapper takes. Every declared input is read, and the invalid
    fields of all of them are one 422 (the query's listed first); a request refused outright
    (a 400 for malformed JSON, a 415) is refused at once.
    """
    if not declared:
        return handler
    ordered = sorted(declared, key=lambda item: _ORDER[item.location])

    def call(request: Request, **values: Any) -> Any:
        for check in checks:
            refusal = check(request)
            if refusal is not None:
                return refusal
        invalid: list[Problem] = []
        for item in ordered:
            try:
                values[item.name] = item.read(request)
            except Problem as problem:
                if problem.code != 422:
                    raise
                invalid.append(problem)
        if len(invalid) == 1:
            raise invalid[0]
        if invalid:
            errors = [error for problem in invalid for error in problem.errors]
            raise failed(errors[:MAX_ERRORS], "the request does")
        return handler(request, **values)

    functools.update_wrapper(call, handler if registered is None else registered)
    call.__microback_input__ = tuple(  # type: ignore[attr-defined]
        parameter for item in ordered for parameter in _describe(item)
    )
    return call
