"""Which request the running greenlet serves: for log records and blocked-loop warnings.

Each connection runs in its own greenlet, and a request is served wholly in its connection's
greenlet, so the greenlet is the request's context: :func:`bind` hangs the request's environ
on it while the application runs (one attribute set, no lookup table to clean;
:func:`binder`), and code that
runs in that greenlet (a log record being made) or that looks at it from outside (gevent's
monitor thread, which sees which greenlet holds the loop) finds the request there.

What a record carries, once :func:`install_record_factory` ran (``configure_logging`` does):
``request_id`` and ``user_id`` attributes on every ``LogRecord`` made while serving a request
(``None`` outside one: class attributes of ``LogRecord``), whichever logger made it, so an
application's own log format may use ``%(request_id)s``. The user id is
``environ["microback.user_id"]``, which the auth layer sets once it knows who the user is.

A background job is a context too: while a worker runs one, ``microback.jobs`` binds a small
dict holding ``microback.job_id`` and ``microback.request_id`` (of the request that enqueued
it), so records made by the job carry ``job_id`` and the request's ``request_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from greenlet import getcurrent

#: The greenlet attribute holding the environ of the request being served.
ATTRIBUTE = "microback_environ"


def bind(environ: dict[str, Any] | None) -> None:
    """Mark the current greenlet as serving the request of *environ* (``None``: none)."""
    setattr(getcurrent(), ATTRIBUTE, environ)


def binder() -> Callable[[dict[str, Any] | None], None]:
    """:func:`bind` for the current greenlet, whichever greenlet later calls it.

    Made once per connection: a connection serves all its requests in its own greenlet, and
    the function made here is a single C call (no greenlet lookup, no Python frame), twice
    per request.
    """
    return partial(setattr, getcurrent(), ATTRIBUTE)


def environ_of(greenlet: Any) -> dict[str, Any] | None:
    """The environ of the request *greenlet* serves, or ``None``."""
    environ: dict[str, Any] | None = getattr(greenlet, ATTRIBUTE, None)
    return environ


def current_environ() -> dict[str, Any] | None:
    """The environ of the request the current greenlet serves, or ``None``."""
    return environ_of(getcurrent())


_installed = False


def install_record_factory() -> None:
    """Make every ``LogRecord`` carry ``request_id``, ``user_id`` and ``job_id`` (module
    docstring)."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()
    # Defaults on the class, for records made outside a request: an instance attribute would
    # make ``extra={"request_id": ...}`` (as access records pass) raise KeyError in makeRecord.
    logging.LogRecord.request_id = None  # type: ignore[attr-defined]
    logging.LogRecord.user_id = None  # type: ignore[attr-defined]
    logging.LogRecord.job_id = None  # type: ignore[attr-defined]

    def record_with_request(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        environ = getattr(getcurrent(), ATTRIBUTE, None)
        if environ is not None:
            record.request_id = environ.get("microback.request_id")
            record.user_id = environ.get("microback.user_id")
            record.job_id = environ.get("microback.job_id")
        return record

    logging.setLogRecordFactory(record_with_request)
