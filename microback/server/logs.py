"""Send the server's log records to stderr, one line each.

Only the ``microback`` logger tree is configured (``microback.server``, ``microback.access``
and whatever the framework logs), and it does not propagate to the root logger: the user's own
module is free to configure logging as it likes without doubling our lines or losing its own.
"""

from __future__ import annotations

import json
import logging
import sys
import time

LEVELS = ("debug", "info", "warning", "error")
ACCESS_FORMATS = ("text", "json")
_ACCESS_FIELDS = (
    "client",
    "method",
    "path",
    "protocol",
    "status",
    "bytes",
    "duration_ms",
    "request_id",
)

_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler this module installs, told apart from any the application adds."""


class JSONAccessFormatter(logging.Formatter):
    """Access records as one JSON object a line; every other record as text.

    The object has ``time`` (ISO 8601, UTC, milliseconds) and the access fields: ``client``,
    ``method``, ``path``, ``protocol``, ``status``, ``bytes``, ``duration_ms``, ``request_id``.
    """

    def format(self, record: logging.LogRecord) -> str:
        if record.name != "microback.access" or not hasattr(record, "request_id"):
            return super().format(record)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, object] = {"time": f"{stamp}.{int(record.msecs):03d}Z"}
        for name in _ACCESS_FIELDS:
            entry[name] = getattr(record, name, None)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "info", access_format: str = "text") -> None:
    """Log ``microback.*`` records at *level* and above to stderr.

    *level* is one of ``debug``, ``info``, ``warning``, ``error``; access lines are INFO.
    *access_format* ``json`` writes access lines as JSON objects (other records stay text).
    Calling it again replaces the handler it installed before.
    """
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if access_format not in ACCESS_FORMATS:
        raise ValueError(
            f"access log format must be one of {', '.join(ACCESS_FORMATS)}, not {access_format!r}"
        )
    logger = logging.getLogger("microback")
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    stderr = _StderrHandler(sys.stderr)
    formatter_class = JSONAccessFormatter if access_format == "json" else logging.Formatter
    stderr.setFormatter(formatter_class(_FORMAT, _DATE_FORMAT))
    logger.addHandler(stderr)
    logger.setLevel(level.upper())
    logger.propagate = False
