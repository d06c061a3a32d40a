"""RFC 9457 problem details: an HTTP error as ``application/problem+json``.

An error that names what is wrong field by field (a body that does not validate) raises
:class:`Problem` with one :class:`FieldError` per field, so a client can show every mistake at
once and a program can act on the machine ``code`` of each.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

__all__ = ["PROBLEM_JSON", "FieldError", "Location", "Problem", "problem_document"]

PROBLEM_JSON = "application/problem+json"

Location = Literal["body", "query", "path", "header", "form"]


class FieldError(NamedTuple):
    """One invalid field: where it is, what is wrong in words, and the same as a code."""

    location: Location
    path: tuple[str | int, ...]
    message: str
    code: str

    def as_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "path": list(self.path),
            "message": self.message,
            "code": self.code,
        }


class Problem(HTTPException):
    """An HTTP error answered as a problem document, with the invalid fields if any."""

    def __init__(self, status: int, detail: str, errors: Iterable[FieldError] = ()) -> None:
        super().__init__(description=detail)
        self.code = status
        self.errors = list(errors)


def problem_document(
    status: int,
    detail: str,
    errors: Iterable[FieldError] = (),
    *,
    type_: str = "about:blank",
    **members: Any,
) -> dict[str, Any]:
    """The JSON of a problem: with type ``about:blank`` the title is the status's phrase.

    ``members`` are extension members (``request_id``, ``instance``...), after the others.
    """
    document: dict[str, Any] = {
        "type": type_,
        "title": HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    listed = [error.as_json() for error in errors]
    if listed:
        document["errors"] = listed
    document.update(members)
    return document
