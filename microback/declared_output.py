"""Declared output: a handler's return type, when it holds a model, is the response's schema.

``def show(request, note_id) -> NoteOut`` answers with exactly the fields of ``NoteOut``,
encoded by msgspec: whatever the handler returns (the model itself, a dict, a peewee row or
any object with those attributes) is converted to the declared type first, so a field it does
not declare (``password_hash``) cannot leave by accident. A value that cannot be converted is
the handler's bug: a ``TypeError`` naming the handler (a 500, its traceback in the log).
The return type is read at registration; other handlers are registered unchanged.
"""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any

import msgspec

from .http import Response
from .validation import models_in
from .validation.model import is_pydantic

__all__ = ["declared_output", "with_declared_output"]


class _Output:
    """The declared return type, with its encoder, made once."""

    def __init__(self, annotation: Any, owner: str) -> None:
        self.type = annotation
        self.owner = owner
        self.encoder = msgspec.json.Encoder()
        msgspec.json.Decoder(annotation)  # resolves the type's annotations now; see models_in

    def response(self, value: Any) -> Response:
        try:
            declared = msgspec.convert(value, self.type, from_attributes=True)
        except msgspec.ValidationError as exc:
            raise TypeError(
                f"handler {self.owner} returned a value that does not fit its declared "
                f"return type {self.type!r}: {exc}"
            ) from None
        return Response.buffered(self.encoder.encode(declared), 200, "application/json")


def declared_output(handler: Any) -> _Output | None:
    """The output ``handler`` declares by its return annotation, if it holds a model."""
    try:
        target = inspect.unwrap(handler)
        hints = typing.get_type_hints(target, include_extras=True)
    except (TypeError, ValueError, NameError):
        return None
    annotation = hints.get("return")
    if annotation is None:
        return None
    models = models_in(annotation)
    if not models or any(is_pydantic(model) for model in models):
        return None  # a pydantic model serializes itself: returned as before
    return _Output(annotation, getattr(target, "__qualname__", repr(target)))


def with_declared_output(handler: Any, output: _Output | None) -> Any:
    """``handler``, or a wrapper that answers with its value through the declared type.

    A tuple keeps its status and headers: ``return note, 201``.
    """
    if output is None:
        return handler

    def call(request: Any, **values: Any) -> Any:
        result = handler(request, **values)
        if isinstance(result, Response):
            return result
        if isinstance(result, tuple) and result:
            return (output.response(result[0]), *result[1:])
        return output.response(result)

    functools.update_wrapper(call, handler)
    return call
