"""Why a request cannot be served, as an HTTP status the server answers before closing.

The parser raises :class:`RequestError` for a malformed or oversized head, and the request body
(``wsgi.input``) raises :class:`ClientError` — the same, visible to the application as an
``OSError`` — when the body is malformed, too large, too slow or cut short. Either way the
server answers ``status`` with ``reason`` as a short plain-text body, and closes the
connection: after a framing error nothing that follows on the connection can be trusted.
"""

from __future__ import annotations

from http import HTTPStatus


class RequestError(Exception):
    """The request is refused with *status*; *reason* says why, in a few words.

    *reason* is ours and goes to the client. *detail*, when there is one, is what the parser
    (llhttp) said: its wording is internal, so it goes to the log at debug level only.
    """

    def __init__(self, status: int, reason: str, detail: str | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.detail = detail

    @property
    def status_line(self) -> str:
        """``"400 Bad Request"``: the status code and its standard phrase."""
        return f"{self.status} {HTTPStatus(self.status).phrase}"


class ClientError(RequestError, OSError):
    """Reading the request body failed because of the client; raised by ``wsgi.input``.

    An ``OSError`` too, so an application that handles I/O errors while reading a body handles
    this one. The server answers it with ``status`` even if the application caught it and
    produced a response of its own, as long as nothing was sent yet.
    """


def bad_request(reason: str) -> RequestError:
    return RequestError(400, reason)
