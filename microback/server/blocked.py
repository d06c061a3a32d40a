"""Warn when code holds the event loop: one line per block, with the request that caused it.

A handler that calls something blocking (``time.sleep``, a C library that does not yield, a
long computation) stops every other request of the process for that long. gevent's monitor
thread (``gevent.config.monitor_thread``) looks every ``max_blocking_time`` seconds whether
the loop switched greenlets since its last look, and emits ``gevent.events.EventLoopBlocked``
if not. On that event, in the monitor thread, while the loop is still blocked, this module
notes the blocked greenlet's request (see :mod:`.context`), the hub thread's stack and the
loop's time (libev's ``now()``, the start of the loop iteration the block is in), and asks the
loop to call back once it runs again: the block is then over, its length known, and the
warning is logged from the loop's own thread (``logging`` and the access buffer are not
thread-safe under gevent). Further events for the same block (the monitor looks again and
again while it lasts) find a call-back pending and add nothing: one line per block.

gevent looks every *threshold / 2* seconds: a block of at least *threshold* spans one whole
period, so it is seen (with a period of *threshold*, a block of 1.5 times threshold could straddle
two looks and go unseen); blocks found shorter than *threshold* are not reported. The monitor
thread's cost is one wake-up per period and a switch counter in the tracer gevent installs.
The worker kill at ``--timeout`` (:mod:`.master`) is separate and stays.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import gevent
from gevent.events import EventLoopBlocked, subscribers

from .context import environ_of

server_logger = logging.getLogger("microback.server")

#: Default for ``--blocked-loop-threshold``, in seconds.
DEFAULT_THRESHOLD = 0.1
#: Innermost frames of the blocking stack shown in the warning.
STACK_FRAMES = 6

_threshold = DEFAULT_THRESHOLD
_pending = False
#: Called with the block's length in seconds, in the loop's thread, after each warning.
on_blocked: list[Callable[[float], None]] = []


def start_monitor(threshold: float = DEFAULT_THRESHOLD) -> None:
    """Watch this process's event loop for blocks of *threshold* seconds or more.

    Idempotent; a later call changes the threshold. Each process that serves calls it (a
    forked worker's monitor thread is restarted by gevent's ``reinit``).
    """
    global _threshold
    if not threshold > 0:
        raise ValueError(f"the blocked-loop threshold must be more than 0, not {threshold}")
    _threshold = threshold
    gevent.config.monitor_thread = True
    gevent.config.max_blocking_time = threshold / 2
    gevent.config.print_blocking_reports = False  # this module reports, in one line
    if _on_event not in subscribers:
        subscribers.append(_on_event)
    # The thread inherits this thread's signal mask: with every signal blocked it never takes
    # one. Otherwise a SIGTERM the kernel hands to it (libev waits for signals in the loop's
    # thread only) found the default action and killed the worker without a graceful stop.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        with warnings.catch_warnings():  # "Unable to monitor memory usage. Install psutil."
            warnings.simplefilter("ignore")
            gevent.get_hub().start_periodic_monitoring_thread()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _on_event(event: object) -> None:
    # In gevent's monitor thread, while the loop is blocked.
    global _pending
    if not isinstance(event, EventLoopBlocked) or _pending:
        return
    hub: Any = event.hub
    if hub is None:
        return
    _pending = True
    started = hub.loop.now()
    frame = sys._current_frames().get(hub.thread_ident)
    stack = traceback.extract_stack(frame)[-STACK_FRAMES:] if frame is not None else []
    environ = environ_of(event.greenlet)
    hub.loop.run_callback_threadsafe(_report, started, stack, environ)


def _report(
    started: float, stack: traceback.StackSummary | list[Any], environ: dict[str, Any] | None
) -> None:
    global _pending
    _pending = False
    blocked = time.time() - started
    if blocked < _threshold:
        return
    server_logger.warning("%s", describe(blocked, stack, environ))
    for callback in on_blocked:
        callback(blocked)


def describe(
    blocked: float, stack: traceback.StackSummary | list[Any], environ: dict[str, Any] | None
) -> str:
    """The warning's one line: how long, which request and route, the innermost frames."""
    if environ is None:
        during = "outside any request"
    else:
        route = environ.get("microback.route") or environ.get("PATH_INFO", "")
        during = (
            f"by {environ.get('REQUEST_METHOD', '')} {route} "
            f"(request {environ.get('microback.request_id', '-')})"
        )
    frames = " <- ".join(
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}"
        + (f" [{frame.line}]" if frame.line else "")
        for frame in reversed(stack)
    )
    return (
        f"event loop blocked for {blocked * 1000:.0f} ms {during}; nothing else ran meanwhile; "
        f"stack, innermost first: {frames or 'unknown'}"
    )
