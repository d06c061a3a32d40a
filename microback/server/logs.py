"""Send the server's log records to stderr, one line each.

Only the ``microback`` logger tree is configured (``microback.server``, ``microback.access``
and whatever the framework logs), and it does not propagate to the root logger: the user's own
module is free to configure logging as it likes without doubling our lines or losing its own.
"""

from __future__ import annotations

import logging
import sys

LEVELS = ("debug", "info", "warning", "error")

_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler this module installs, told apart from any the application adds."""


def configure_logging(level: str = "info") -> None:
    """Log ``microback.*`` records at *level* and above to stderr.

    *level* is one of ``debug``, ``info``, ``warning``, ``error``; access lines are INFO.
    Calling it again replaces the handler it installed before.
    """
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    logger = logging.getLogger("microback")
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    stderr = _StderrHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
    logger.addHandler(stderr)
    logger.setLevel(level.upper())
    logger.propagate = False
