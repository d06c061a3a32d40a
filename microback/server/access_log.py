"""One access-log line per request, on the ``microback.access`` logger.

A line reads::

    127.0.0.1 "GET /notes?page=2 HTTP/1.1" 200 512 3.1ms 5f3a9c1e04-2a

client address, request line (method, target as sent, protocol), status, response body bytes,
time from the end of the request head to the last byte written, and the request id. The
client address is the one the application saw (``REMOTE_ADDR`` after the app ran: a proxy's
``X-Forwarded-For`` applied by ``trusted_proxies`` or a middleware such as werkzeug's
``ProxyFix``); the connection's own peer (the proxy, or ``""`` over a Unix socket) is the
``peer`` field of JSON lines. A response cut short (the client stopped reading or went away,
the application failed after its first byte, the server stopped) has ``!`` after its status
and the reason at the end, ``200! 65536 30001.0ms 5f3a9c1e04-2b incomplete=timeout``; see
:data:`INCOMPLETE_REASONS`.

Request headers and bodies are never logged: they carry cookies, tokens and passwords; query
values whose names look secret (``?token=``, ``?password=``, ...; ``--secret-params``) are
logged as ``***`` (see :mod:`microback.redact`). The same values are attached to the record as
attributes (``client``, ``peer``, ``method``, ``path``, ``protocol``, ``status``, ``bytes``,
``duration_ms``, ``request_id``, ``incomplete``), which ``--access-log-format json`` writes as
one JSON object per line (see :mod:`.logs`).

Requests refused before the application ran (400, 408, 413, 414, 431, 501, 505) are logged
too, with ``-`` for what was not parsed. Access lines are INFO, so ``--log-level warning``
turns them off. With the logging configured by :func:`~.logs.configure_logging` and nothing
added to it, a line skips the ``logging`` machinery and is buffered (see :mod:`.logs`).
"""

from __future__ import annotations

import logging

from .logs import ACCESS_LOGGER, access_handler, query_masker

access_logger = logging.getLogger(ACCESS_LOGGER)

#: Why a response was cut short, as the access line says it.
INCOMPLETE_REASONS = {
    "timeout": "the client took no response bytes for the body timeout",
    "client-disconnect": "the client closed or reset the connection",
    "app-error": "the application failed after the first byte, or sent less than its length",
    "shutdown": "the server stopped before the response was sent",
}


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
    *,
    peer: str | None = None,
    incomplete: str | None = None,
) -> None:
    """Log one finished request (or one refused before the app ran) at INFO.

    *client* is the address the application saw, *peer* the connection's (default: the
    same); *incomplete* is one of :data:`INCOMPLETE_REASONS` for a response cut short.
    """
    if not access_logger.isEnabledFor(logging.INFO):
        return
    method = method or "-"
    if path:
        if "?" in path:
            path = query_masker().target(path)
        path = _printable(path)
    else:
        path = "-"
    protocol = protocol or "-"
    duration_ms = duration_s * 1000.0
    if peer is None:
        peer = client
    handler = access_handler()
    if handler is not None:
        handler.write_access(
            client,
            method,
            path,
            protocol,
            status,
            body_bytes,
            duration_ms,
            request_id,
            peer,
            incomplete,
        )
        return
    # makeRecord and handle, not info(): the caller's frame is never needed for an access line,
    # and finding it is a fifth of the cost of logging one.
    record = access_logger.makeRecord(
        access_logger.name,
        logging.INFO,
        __file__,
        0,
        '%s "%s %s %s" %s%s %d %.1fms %s%s',
        (
            client or "-",
            method,
            path,
            protocol,
            status or "-",
            "!" if incomplete else "",
            body_bytes,
            duration_ms,
            request_id or "-",
            f" incomplete={incomplete}" if incomplete else "",
        ),
        None,
        extra={
            "client": client,
            "peer": peer,
            "method": method,
            "path": path,
            "protocol": protocol,
            "status": status,
            "bytes": body_bytes,
            "duration_ms": round(duration_ms, 3),
            "request_id": request_id,
            "incomplete": incomplete,
        },
    )
    access_logger.handle(record)
