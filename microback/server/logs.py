"""Send the server's log records to stderr, one line each; access lines in batches.

Only the ``microback`` logger tree is configured (``microback.server``, ``microback.access``
and whatever the framework logs), and it does not propagate to the root logger: the user's own
module is free to configure logging as it likes without doubling our lines or losing its own.

Access lines are the one record written for every request, and going through ``logging`` for
each cost more than the server spends on the request itself (benchmarks/README.md): a LogRecord, a
lock, a formatter that formats the time again, and one ``write()`` system call per line (stderr
is line-buffered). So while the configuration is the one made here — nobody has added a
handler or a filter that must see the records — :func:`~.access_log.log_access` hands the
fields straight to :meth:`StderrHandler.write_access`, which formats the line (the time prefix
once a second) and buffers it. The buffer is written in one call at most
:data:`FLUSH_SECONDS` after its first line, when it reaches :data:`FLUSH_BYTES`, before any
other record (so the log stays in order), and at exit. A process killed with SIGKILL loses the
lines of its last fraction of a second. With a handler or filter added to the ``microback`` or
``microback.access`` logger, every access line goes through ``logging`` again, as a record
with the fields as attributes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterable
from json.encoder import encode_basestring
from typing import TextIO

import gevent

from ..redact import DEFAULT_SECRET_WORDS, Masker
from .context import install_record_factory

LEVELS = ("debug", "info", "warning", "error")
ACCESS_FORMATS = ("text", "json")
ACCESS_LOGGER = "microback.access"
_ACCESS_FIELDS = (
    "client",
    "peer",
    "method",
    "path",
    "protocol",
    "status",
    "bytes",
    "duration_ms",
    "request_id",
    "incomplete",
)

_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"

#: Longest time an access line waits in the buffer.
FLUSH_SECONDS = 0.2
#: Buffered characters that trigger a write at once.
FLUSH_BYTES = 64 * 1024

_root = logging.getLogger("microback")
_access = logging.getLogger(ACCESS_LOGGER)


class TextFormatter(logging.Formatter):
    """The text line of a record; one made while serving a request ends with its ids.

    ``... ERROR microback.app: payment refused [request 3f2a9c01de-1c user 42]``: the request
    id is the access line's and the ``X-Request-ID`` header's, so one grep finds all of it.
    """

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        job_id = getattr(record, "job_id", None)
        if (request_id is None and job_id is None) or record.name == ACCESS_LOGGER:
            return text
        user_id = getattr(record, "user_id", None)
        ids = " ".join(
            f"{name} {value}"
            for name, value in (("job", job_id), ("request", request_id), ("user", user_id))
            if value is not None
        )
        head, newline, rest = text.partition("\n")  # before a traceback, if any
        return f"{head} [{ids}]{newline}{rest}"


class JSONAccessFormatter(TextFormatter):
    """Access records, and records made while serving a request, as one JSON object a line.

    An access object has ``time`` (ISO 8601, UTC, milliseconds) and the access fields:
    ``client``, ``peer``, ``method``, ``path``, ``protocol``, ``status``, ``bytes``,
    ``duration_ms``, ``request_id``, ``incomplete`` (``null``, or why the response was cut
    short). A record made while serving a request or running a job has ``time``, ``level``,
    ``logger``, ``message``, ``request_id``, ``user_id``, ``job_id`` and, with an exception,
    ``exception`` (its traceback). Other records (start-up, stop) stay text.
    """

    def format(self, record: logging.LogRecord) -> str:
        if record.name != ACCESS_LOGGER:
            if getattr(record, "request_id", None) is None and not getattr(record, "job_id", None):
                return super().format(record)
            return self._request_record(record)
        if not hasattr(record, "request_id"):
            return super().format(record)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, object] = {"time": f"{stamp}.{int(record.msecs):03d}Z"}
        for name in _ACCESS_FIELDS:
            entry[name] = getattr(record, name, None)
        return json.dumps(entry, ensure_ascii=False)

    def _request_record(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "user_id": getattr(record, "user_id", None),
            "job_id": getattr(record, "job_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs: records as lines, access lines buffered."""

    def __init__(self, stream: TextIO, access_format: str) -> None:
        super().__init__(stream)
        self.json = access_format == "json"
        formatter_class = JSONAccessFormatter if self.json else TextFormatter
        self.setFormatter(formatter_class(_FORMAT, _DATE_FORMAT))
        self._reset()

    def _reset(self) -> None:
        self._lines: deque[str] = deque()
        self._size = 0
        self._flush_scheduled = False
        self._second = -1
        self._prefix = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == ACCESS_LOGGER:  # an access line that came through logging
            try:
                self._buffer(self.format(record) + self.terminator)
            except Exception:
                self.handleError(record)
            return
        self.flush_access()  # earlier access lines first: the log stays in order
        super().emit(record)

    def write_access(
        self,
        client: str,
        method: str,
        path: str,
        protocol: str,
        status: int,
        body_bytes: int,
        duration_ms: float,
        request_id: str,
        peer: str,
        incomplete: str | None,
    ) -> None:
        """Buffer the access line for these fields, formatted as a record of them would be."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            if self.json:
                self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            else:
                stamp = time.strftime(_DATE_FORMAT, time.localtime(now))
                self._prefix = f"{stamp} [{os.getpid()}] INFO {ACCESS_LOGGER}: "
        if self.json:
            millis = int((now - second) * 1000)
            line = (
                f'{{"time": "{self._prefix}.{millis:03d}Z", '
                f'"client": {encode_basestring(client)}, "peer": {encode_basestring(peer)}, '
                f'"method": {encode_basestring(method)}, "path": {encode_basestring(path)}, '
                f'"protocol": {encode_basestring(protocol)}, "status": {status}, '
                f'"bytes": {body_bytes}, "duration_ms": {round(duration_ms, 3)!r}, '
                f'"request_id": {encode_basestring(request_id)}, '
                f'"incomplete": {encode_basestring(incomplete) if incomplete else "null"}}}\n'
            )
        elif incomplete:
            line = (
                f'{self._prefix}{client or "-"} "{method} {path} {protocol}" {status or "-"}! '
                f"{body_bytes} {duration_ms:.1f}ms {request_id or '-'} incomplete={incomplete}\n"
            )
        else:
            line = (
                f'{self._prefix}{client or "-"} "{method} {path} {protocol}" {status or "-"} '
                f"{body_bytes} {duration_ms:.1f}ms {request_id or '-'}\n"
            )
        self._buffer(line)

    def _buffer(self, line: str) -> None:
        # No lock here (a gevent lock would double the cost of a line): deque.append is atomic,
        # and flush_access takes lines out one popleft() at a time, so none is lost.
        self._lines.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush_access()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            gevent.spawn_later(FLUSH_SECONDS, self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush_access()

    def flush_access(self) -> None:
        """Write the buffered access lines now, in one call."""
        if not self._lines:
            return
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            pending = self._lines
            lines = [pending.popleft() for _ in range(len(pending))]
            self._size = 0
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stderr is gone: there is nobody left to tell

    def flush(self) -> None:
        self.flush_access()
        super().flush()


_installed: StderrHandler | None = None
_masker = Masker()


def query_masker() -> Masker:
    """The masker for request targets in log lines (the words of ``configure_logging``)."""
    return _masker


def access_handler() -> StderrHandler | None:
    """The installed handler, if access records would reach it and nothing else; else None.

    Checked on every request (a few attribute reads), so a handler or filter added at any
    time, by the application's module say, sees every access record from then on.
    """
    handler = _installed
    if handler is None or _access.handlers or _access.filters or not _access.propagate:
        return None
    handlers = _root.handlers
    if len(handlers) != 1 or handlers[0] is not handler or _root.filters or _root.propagate:
        return None
    return None if handler.filters else handler


def flush_logs() -> None:
    """Write what the installed handler holds (before a worker process exits)."""
    if _installed is not None:
        _installed.flush()


def _after_fork_in_child() -> None:
    # The child must not write the parent's buffered lines a second time, nor stamp its own
    # lines with the parent's process id.
    if _installed is not None:
        _installed._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)


def configure_logging(
    level: str = "info",
    access_format: str = "text",
    stream: TextIO | None = None,
    secret_params: Iterable[str] = DEFAULT_SECRET_WORDS,
) -> None:
    """Log ``microback.*`` records at *level* and above to *stream* (default: stderr).

    *level* is one of ``debug``, ``info``, ``warning``, ``error``; access lines are INFO.
    *access_format* ``json`` writes access lines, and records made while serving a request,
    as JSON objects (other records stay text). Every record made while serving a request
    carries the request's id (and the user's, once known): see :mod:`.context`.
    Query values whose names end in one of the *secret_params* words are logged as ``***``
    (see :mod:`microback.redact`). Calling it again replaces the handler it installed before.
    """
    global _installed, _masker
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if access_format not in ACCESS_FORMATS:
        raise ValueError(
            f"access log format must be one of {', '.join(ACCESS_FORMATS)}, not {access_format!r}"
        )
    _masker = Masker(secret_params)
    install_record_factory()
    for handler in list(_root.handlers):
        if isinstance(handler, StderrHandler):
            handler.flush()
            _root.removeHandler(handler)
    _installed = StderrHandler(sys.stderr if stream is None else stream, access_format)
    _root.addHandler(_installed)
    _root.setLevel(level.upper())
    _root.propagate = False
