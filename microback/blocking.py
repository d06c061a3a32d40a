"""Run work that would freeze the event loop somewhere it cannot.

Under ``microback serve`` (or gunicorn's gevent worker) every request is a greenlet on one
event loop: a call that holds the CPU for 300 ms — a bcrypt hash at cost 12 — stalls every
other request for that long. Work that releases the GIL can run in gevent's thread pool
instead, and the loop keeps serving. Outside gevent this module changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["run_blocking", "run_bounded"]

_R = TypeVar("_R")


def run_blocking(function: Callable[..., _R], /, *args: Any) -> _R:
    """Call ``function(*args)`` off the event loop when gevent runs the process, else inline.

    Only code that releases the GIL (bcrypt, hashlib on large inputs, C database drivers)
    gains from this; pure-Python work would hold the GIL in the pool thread too.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        import gevent

        result: _R = gevent.get_hub().threadpool.apply(function, args)
        return result
    return function(*args)


_bounded_pool: ThreadPoolExecutor | None = None


def run_bounded(function: Callable[[], _R], timeout: float) -> _R:
    """Call ``function()`` in a thread and wait at most *timeout* seconds for it.

    Raises ``TimeoutError`` when it takes longer; the thread finishes on its own. For checks
    whose driver may block where no timeout reaches it (a connect to a host that never
    answers): a health probe must answer in bounded time whatever the driver does.
    """
    global _bounded_pool
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        import gevent

        try:
            result: _R = gevent.get_hub().threadpool.spawn(function).get(timeout=timeout)  # type: ignore[assignment]  # get() raises instead of giving None
        except gevent.Timeout:
            raise TimeoutError(f"no answer within {timeout:g}s") from None
        return result
    if _bounded_pool is None:
        _bounded_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="microback-bounded")
    return _bounded_pool.submit(function).result(timeout=timeout)
