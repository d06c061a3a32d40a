"""``wsgi.input``: the request body, read from the connection as the application asks.

The connection reads the first 16 KiB of a body (``PREREAD_LIMIT``) before the request takes
a place in the application, so that a client sending its body slowly holds no such place
(except with ``Expect: 100-continue``). Beyond that, nothing is read ahead of what one
``recv()`` brings: a large body the application reads slowly is never buffered whole. The
reader is terminated (``wsgi.input_terminated``): ``read()`` returns ``b""`` at the end of
the body, for Content-Length and chunked bodies alike.

``Expect: 100-continue`` is answered when the application first asks for body bytes that have
not arrived, never before: an application that refuses the request without reading (401, 413)
saves the client from sending the body. Errors — a malformed chunk, a body above the server's
limit, a client silent for longer than the body timeout or slower than the minimum body
rate, a client gone mid-body — are raised as :class:`~.errors.ClientError`, and the server
answers them with their status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .errors import ClientError
from .parsing import Message

_LINE_CHUNK = 8192


class RequestBody:
    """A file-like reader of one request's body (``read``, ``readline``, ``readlines``, iter)."""

    __slots__ = ("_continue", "_fill", "_message", "_offset", "bytes_read")

    def __init__(
        self,
        message: Message,
        fill: Callable[[Message], None],
        send_continue: Callable[[], None] | None,
    ) -> None:
        self._message = message
        self._fill = fill
        self._continue = send_continue
        self._offset = 0  # bytes of message.body already returned
        self.bytes_read = 0

    @property
    def continue_pending(self) -> bool:
        """The client awaits ``100 Continue``: it was asked for and never sent."""
        return self._continue is not None and not self._message.complete

    def _more(self) -> None:
        # Compact the buffer before it grows: what was returned is dropped.
        message = self._message
        if self._offset:
            del message.body[: self._offset]
            self._offset = 0
        if message.error is not None:
            raise ClientError(message.error.status, message.error.reason)
        if self._continue is not None:
            send, self._continue = self._continue, None
            send()
        self._fill(message)
        if message.error is not None:
            raise ClientError(message.error.status, message.error.reason)

    def _available(self) -> int:
        return len(self._message.body) - self._offset

    def _take(self, size: int) -> bytes:
        start = self._offset
        data = bytes(self._message.body[start : start + size])
        self._offset = start + len(data)
        self.bytes_read += len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Read *size* bytes, fewer at the end of the body; all of the rest if *size* < 0."""
        message = self._message
        if size is None or size < 0:
            while not message.complete:
                self._more()
            return self._take(self._available())
        while self._available() < size and not message.complete:
            self._more()
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        """Read up to and including the next ``\\n`` (at most *size* bytes if given)."""
        message = self._message
        limit = size if size is not None and size >= 0 else None
        while True:
            body = message.body
            end = body.find(b"\n", self._offset)
            if end >= 0:
                length = end + 1 - self._offset
                return self._take(length if limit is None else min(length, limit))
            if message.complete or (limit is not None and self._available() >= limit):
                return self._take(self._available() if limit is None else limit)
            self._more()

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read the remaining lines (stop once about *hint* bytes are read, if given)."""
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline(_LINE_CHUNK):
            yield line

    def discard(self, limit: int) -> bool:
        """Read and drop the rest of the body, up to *limit* more bytes; return if it ended."""
        message = self._message
        dropped = 0
        while not message.complete and message.error is None:
            if self._continue is not None or dropped > limit:
                return False
            dropped += self._available()
            try:
                self._more()
            except ClientError:
                return False
        self._offset = 0
        message.body.clear()
        return message.error is None


class EmptyBody:
    """``wsgi.input`` of a request that has no body: every read returns nothing.

    Stateless, so one instance serves every such request (most requests are GETs).
    """

    __slots__ = ()

    continue_pending = False
    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return []

    def __iter__(self) -> Iterator[bytes]:
        return iter(())

    def discard(self, limit: int) -> bool:
        return True


EMPTY_BODY = EmptyBody()
