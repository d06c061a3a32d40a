"""Access lines: the buffered short path writes exactly what ``logging`` would have written.

In-process: these tests configure the ``microback`` loggers the way ``microback serve`` does,
and put them back afterwards.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from microback.server import logs
from microback.server.access_log import access_logger, log_access

REQUEST = ("10.0.0.7", "GET", "/notes?page=2\x1b[31m", "HTTP/1.1", 200, 512, 0.0031, "5f3a-2a")


@pytest.fixture
def stderr() -> Iterator[io.StringIO]:
    """A stream for ``configure_logging``; the loggers are put back as they were after."""
    root = logging.getLogger("microback")
    saved = (list(root.handlers), root.level, root.propagate, logs._installed)
    stream = io.StringIO()
    yield stream
    if logs._installed is not None:
        logs._installed.flush()
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    logs._installed = saved[3]


def _lines(stream: io.StringIO) -> list[str]:
    assert logs._installed is not None
    logs._installed.flush()
    return stream.getvalue().splitlines()


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("access_format", ["text", "json"])
@pytest.mark.parametrize("incomplete", [None, "timeout"])
def test_short_path_writes_what_logging_writes(
    stderr: io.StringIO, access_format: str, incomplete: str | None
) -> None:
    logs.configure_logging("info", access_format, stderr)
    assert logs.access_handler() is logs._installed
    fields = {"peer": "10.0.0.1", "incomplete": incomplete}

    log_access(*REQUEST, **fields)  # the short path
    recorder = Recorder()
    access_logger.addHandler(recorder)  # someone wants the records: through logging
    try:
        assert logs.access_handler() is None
        log_access(*REQUEST, **fields)
    finally:
        access_logger.removeHandler(recorder)

    short, through_logging = _lines(stderr)
    if access_format == "json":
        first, second = json.loads(short), json.loads(through_logging)
        assert first.pop("time")[:10] == second.pop("time")[:10]
        assert first == second
        assert first["path"] == "/notes?page=2\\x1b[31m"
        assert (first["client"], first["peer"]) == ("10.0.0.7", "10.0.0.1")
        assert first["incomplete"] == incomplete
    else:
        stamp = re.compile(r"^\S+ \S+ \S+ ")  # the time, to the second
        assert stamp.sub("", short) == stamp.sub("", through_logging)
        mark, reason = ("!", " incomplete=timeout") if incomplete else ("", "")
        assert short.endswith(
            ' INFO microback.access: 10.0.0.7 "GET /notes?page=2\\x1b[31m HTTP/1.1" '
            f"200{mark} 512 3.1ms 5f3a-2a{reason}"
        )
    (record,) = recorder.records
    assert (record.status, record.bytes, record.request_id) == (200, 512, "5f3a-2a")
    assert (record.peer, record.incomplete) == ("10.0.0.1", incomplete)


def test_secret_params_of_configure_logging_mask_query_values(stderr: io.StringIO) -> None:
    logs.configure_logging("info", "text", stderr, secret_params=["sid"])
    try:
        log_access("10.0.0.7", "GET", "/a?sid=1&token=2", "HTTP/1.1", 200, 1, 0.001, "r-1")
    finally:
        logs.configure_logging("info", "text", stderr)  # the default words again

    (line,) = _lines(stderr)
    assert '"GET /a?sid=***&token=2 HTTP/1.1"' in line


def test_buffered_lines_come_before_the_next_record(stderr: io.StringIO) -> None:
    logs.configure_logging("info", stream=stderr)

    log_access(*REQUEST)
    assert stderr.getvalue() == ""  # buffered
    logging.getLogger("microback.server").warning("something else")

    first, second = stderr.getvalue().splitlines()
    assert "microback.access" in first
    assert second.endswith("WARNING microback.server: something else")


def test_warning_level_turns_access_lines_off(stderr: io.StringIO) -> None:
    logs.configure_logging("warning", stream=stderr)

    log_access(*REQUEST)

    assert _lines(stderr) == []
