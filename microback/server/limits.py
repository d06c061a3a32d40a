"""The limits that keep one client from taking more than its share of a server process.

Each limit has a precise answer: the response is sent, then the connection is closed (nothing
after an oversized or timed-out request can be trusted to be framed as the client meant).

===================  ========================================================  ================
limit                what it bounds                                            answer
===================  ========================================================  ================
max_request_line     bytes of the request target (path and query)              414
max_header_count     header fields in one request                              431
max_header_size      bytes of all header names and values together             431
max_body_size        bytes of a request body (``None``: unbounded)             413
header_timeout       seconds from a request's first byte to its last header    408
body_timeout         seconds of silence while reading a body or while the      408 (reading),
                     client is not taking response bytes                       close (writing)
keepalive_timeout    seconds a connection may sit idle between requests        close
min_body_rate        bytes per second a body must average once the server has  408
                     waited ``body_rate_grace`` seconds for it (0: no minimum)
===================  ========================================================  ================

A ``Content-Length`` above ``max_body_size`` is refused before any of the body is read (and
before ``100 Continue``); a chunked body is refused when it crosses the limit. The
application's own limit (``max_content_length`` of a microback ``App``) is checked by the
application; this one protects the process from any application.

The header timeout is a deadline for the whole head, not a wait per read: a client that sends
one byte a second ("slowloris") is cut off when the deadline passes, however steadily it
dribbles. A fresh connection gets ``header_timeout`` to send its first byte; an idle keep-alive
connection ``keepalive_timeout``.

The body timeout is a wait per read, so a body sent a byte every few seconds would never end
it. The minimum body rate (as Kestrel's ``MinRequestBodyDataRate``: 240 bytes/s after a 5 s
grace period) does: counting only the time the server waits for body bytes (not the time the
application spends between reads), a body must have reached ``min_body_rate`` bytes for each
second waited once ``body_rate_grace`` seconds have been waited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-request limits of one server; every field is checked when the object is made."""

    max_request_line: int = 8190
    max_header_count: int = 100
    max_header_size: int = 65536
    max_body_size: int | None = 100 * MiB
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    min_body_rate: int = 240
    body_rate_grace: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_request_line", "max_header_count", "max_header_size"):
            _check_count(name, getattr(self, name))
        if self.max_body_size is not None:
            _check_count("max_body_size", self.max_body_size, minimum=0)
        _check_count("min_body_rate", self.min_body_rate, minimum=0)
        for name in ("header_timeout", "body_timeout", "keepalive_timeout", "body_rate_grace"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 < value < math.inf
            ):
                raise ValueError(f"{name} must be a number of seconds above 0, not {value!r}")


def _check_count(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, not {value!r}")
