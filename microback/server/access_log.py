"""One access-log line per request, on the ``microback.access`` logger.

A line reads::

    127.0.0.1 "GET /notes?page=2 HTTP/1.1" 200 512 3.1ms 5f3a9c1e04-2a

client address, request line (method, target as sent, protocol), status, response body bytes,
time from the end of the request head to the last byte written, and the request id. Request
headers and bodies are never logged: they carry cookies, tokens and passwords. The same values
are attached to the record as attributes (``client``, ``method``, ``path``, ``protocol``,
``status``, ``bytes``, ``duration_ms``, ``request_id``), which ``--access-log-format json``
writes as one JSON object per line (see :mod:`.logs`).

Requests refused before the application ran (400, 408, 413, 414, 431, 501, 505) are logged
too, with ``-`` for what was not parsed. Access lines are INFO, so ``--log-level warning``
turns them off. With the logging configured by :func:`~.logs.configure_logging` and nothing
added to it, a line skips the ``logging`` machinery and is buffered (see :mod:`.logs`).
"""

from __future__ import annotations

import logging

from .logs import ACCESS_LOGGER, access_handler

access_logger = logging.getLogger(ACCESS_LOGGER)


def _printable(text: str) -> str:
    # The request target is whatever the client sent; escape control characters so a line in
    # the log is always one line and cannot forge another one.
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def log_access(
    client: str,
    method: str,
    path: str,
    protocol: str,
    status: int,
    body_bytes: int,
    duration_s: float,
    request_id: str,
) -> None:
    """Log one finished request (or one refused before the app ran) at INFO."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    method = method or "-"
    path = _printable(path) if path else "-"
    protocol = protocol or "-"
    duration_ms = duration_s * 1000.0
    handler = access_handler()
    if handler is not None:
        handler.write_access(
            client, method, path, protocol, status, body_bytes, duration_ms, request_id
        )
        return
    # makeRecord and handle, not info(): the caller's frame is never needed for an access line,
    # and finding it is a fifth of the cost of logging one.
    record = access_logger.makeRecord(
        access_logger.name,
        logging.INFO,
        __file__,
        0,
        '%s "%s %s %s" %s %d %.1fms %s',
        (
            client or "-",
            method,
            path,
            protocol,
            status or "-",
            body_bytes,
            duration_ms,
            request_id or "-",
        ),
        None,
        extra={
            "client": client,
            "method": method,
            "path": path,
            "protocol": protocol,
            "status": status,
            "bytes": body_bytes,
            "duration_ms": round(duration_ms, 3),
            "request_id": request_id,
        },
    )
    access_logger.handle(record)
