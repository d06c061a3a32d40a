"""What a declared type is made of: the markers that say where a value comes from, and a
model's fields as they appear on the wire.

A *model* is a dataclass, a ``TypedDict``, a ``msgspec.Struct`` or, when pydantic is
installed and imported by the app, a pydantic ``BaseModel``. pydantic is never imported
here: a class can only be a pydantic model if its module imported pydantic first.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import typing
from collections.abc import Iterable
from typing import Annotated, Any, NamedTuple

import msgspec

__all__ = ["Body", "Field", "Form", "Header", "Query", "fields", "is_model", "models_in"]


@dataclasses.dataclass(frozen=True)
class Body:
    """Marks a parameter as the JSON body, for a type that is not a model (``list[Item]``),
    or to accept unknown fields: ``Annotated[Note, Body(forbid_unknown_fields=False)]``."""

    forbid_unknown_fields: bool = True


@dataclasses.dataclass(frozen=True)
class Query:
    """Marks a parameter as the query string, for a model whose fields are its parameters:
    ``filters: Annotated[Filters, Query()]``. A field typed as a list takes every value of
    a repeated parameter (``?tag=a&tag=b``); text is converted to the declared types."""

    forbid_unknown_fields: bool = True


@dataclasses.dataclass(frozen=True)
class Form:
    """Marks a parameter as the form body (``application/x-www-form-urlencoded`` or
    ``multipart/form-data``), for a model whose fields are the form's fields:
    ``signup: Annotated[Signup, Form()]``. Text is converted as for :class:`Query`.

    ``ignore`` names fields that are not the handler's to declare and are never refused as
    unknown: the CSRF token's field by default (pass your name if you renamed it).
    """

    forbid_unknown_fields: bool = True
    ignore: tuple[str, ...] = ("csrf_token",)


@dataclasses.dataclass(frozen=True)
class Header:
    """Marks a parameter as request headers, for a model whose fields are header names:
    a field ``if_match`` reads ``If-Match`` (underscores become hyphens; case does not
    matter). Headers the model does not name are never refused: clients send many."""


Marker = Body | Query | Form | Header


class Field(NamedTuple):
    """One field of a model: its name on the wire, its declared type, whether it must be
    there."""

    wire_name: str
    type: Any
    required: bool


def strip(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[T, *meta]`` as ``(T, meta)``; another type as ``(type, ())``."""
    if typing.get_origin(annotation) is Annotated:
        return annotation.__origin__, annotation.__metadata__
    return annotation, ()


def is_pydantic(annotation: Any) -> bool:
    """Tell whether ``annotation`` is a pydantic model class, without importing pydantic."""
    pydantic = sys.modules.get("pydantic")
    return (
        pydantic is not None
        and isinstance(annotation, type)
        and issubclass(annotation, pydantic.BaseModel)
    )


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and (
        issubclass(annotation, msgspec.Struct)
        or dataclasses.is_dataclass(annotation)
        or typing.is_typeddict(annotation)
        or is_pydantic(annotation)
    )


@functools.cache
def fields(model: type) -> tuple[Field, ...]:
    """The fields of a model as they appear in JSON, with their declared types."""
    if is_pydantic(model):
        # pydantic keeps a field's constraints apart from its type: Annotated puts them back.
        return tuple(
            Field(
                info.alias or name,
                Annotated[tuple([info.annotation, *info.metadata])]
                if info.metadata
                else info.annotation,
                info.is_required(),
            )
            for name, info in model.model_fields.items()  # type: ignore[attr-defined]
        )
    hints = typing.get_type_hints(model, include_extras=True)
    if issubclass(model, msgspec.Struct):
        names = model.__struct_fields__
        wire = model.__struct_encode_fields__
        first_default = len(names) - len(model.__struct_defaults__)
        return tuple(
            Field(wire[i], hints[name], i < first_default) for i, name in enumerate(names)
        )
    if dataclasses.is_dataclass(model):
        return tuple(
            Field(
                field.name,
                hints[field.name],
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING,
            )
            for field in dataclasses.fields(model)
            if field.init
        )
    required = model.__required_keys__  # type: ignore[attr-defined]
    return tuple(Field(name, kind, name in required) for name, kind in hints.items())


def refuses_unknown(model: type, forbid: bool) -> bool:
    config = getattr(model, "__struct_config__", None)
    return forbid or bool(config is not None and config.forbid_unknown_fields)


def _children(annotation: Any) -> Iterable[Any]:
    base, _ = strip(annotation)
    if is_model(base):
        return [field.type for field in fields(base)]
    return [arg for arg in typing.get_args(base) if arg is not Ellipsis]


def models_in(annotation: Any) -> list[type]:
    """Every model in a declared type, its fields read now: a type's annotations can only
    be resolved while its module is loaded, and a request must not be where that fails."""
    found: list[type] = []
    seen: set[int] = set()
    stack = [annotation]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        base, _ = strip(current)
        if is_model(base):
            found.append(base)
        stack.extend(_children(current))
    return found


def marker(annotation: Any) -> Marker | None:
    """Where a parameter comes from: its marker, or the body for a model without one."""
    base, metadata = strip(annotation)
    for item in metadata:
        if isinstance(item, Body | Query | Form | Header):
            return item
        if item in (Body, Query, Form, Header):
            made: Marker = item()
            return made
    return Body() if is_model(base) else None
