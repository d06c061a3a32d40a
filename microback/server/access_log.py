"""One access-log line per request, on the ``microback.access`` logger.

A line reads::

    127.0.0.1 "GET /notes?page=2 HTTP/1.1" 200 512 3.1ms

client address, request line (method, path with query string, protocol), status, response body
bytes and time from the end of the request headers to the last byte written. Request headers and
bodies are never logged: they carry cookies, tokens and passwords. The same values are attached
to the record as attributes (``client``, ``method``, ``path``, ``status``, ``bytes``,
``duration_ms``) so a structured formatter can use them without parsing the message.

Access lines are logged at INFO, so ``--log-level warning`` turns them off.
"""

from __future__ import annotations

import logging

access_logger = logging.getLogger("microback.access")


def _printable(text: str) -> str:
    # The request line is whatever the client sent; escape control characters so a line in the
    # log is always one line and cannot forge another one.
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def log_access(
    client: str,
    requestline: str,
    status: int | str,
    body_bytes: int,
    duration_s: float,
) -> None:
    """Log one finished request (or one rejected before the app ran) at INFO."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    requestline = _printable(requestline) if requestline else "-"
    method, _, rest = requestline.partition(" ")
    path = rest.rpartition(" ")[0] or rest
    duration_ms = duration_s * 1000.0
    access_logger.info(
        '%s "%s" %s %d %.1fms',
        client or "-",
        requestline,
        status,
        body_bytes,
        duration_ms,
        extra={
            "client": client,
            "method": method,
            "path": path,
            "status": status,
            "bytes": body_bytes,
            "duration_ms": duration_ms,
        },
    )
