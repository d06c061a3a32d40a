"""``wsgi.file_wrapper``: let an application return a file for the server to send.

The server sends it in blocks of ``block_size`` bytes through the same path as any other
iterable (with ``Content-Length`` when the app sets it, chunked otherwise), and calls its
``close()`` afterwards, which closes the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DEFAULT_BLOCK_SIZE = 65536


class FileWrapper:
    """Iterate over a file-like object in blocks; ``close()`` closes it."""

    def __init__(self, filelike: Any, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while block := read(self.block_size):
            yield block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()
