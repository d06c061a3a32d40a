"""What every connection of one server shares (:class:`Site`), and the request ids it hands out."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Any

from gevent.lock import BoundedSemaphore

from .config import ServerConfig
from .limits import Limits
from .waiting import Connections

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["RequestIds", "Site"]


class RequestIds:
    """Generate request ids: a random per-process prefix and a counter (cheap and unique)."""

    def __init__(self) -> None:
        self.prefix = os.urandom(5).hex() + "-"
        #: The next id: ``prefix-1``, ``prefix-2``, ... in hexadecimal; a C-level iterator,
        #: so that taking one costs no Python call.
        self.next: Callable[[], str] = map((self.prefix + "{:x}").format, count(1)).__next__


@dataclass
class Site:
    """What every connection of one server shares: the app, its limits and its registry.

    *app_slots* bounds the requests inside the application at once (``--max-concurrent-
    requests``), across all connections: a request whose head is complete waits for a slot
    before the app is called, and gives it back once its response is written. Connections
    still sending a head, or idle between requests, take no slot, so clients that dribble
    their heads (slowloris) cannot keep a request from reaching the app.
    """

    app: WSGIApplication
    limits: Limits
    environ: dict[str, Any]
    connections: Connections = field(default_factory=Connections)
    request_ids: RequestIds = field(default_factory=RequestIds)
    app_slots: BoundedSemaphore = field(
        default_factory=lambda: BoundedSemaphore(ServerConfig.max_concurrent_requests)
    )
    #: Requests slower than this (seconds) get a slow-request line (:mod:`.slow`); ``None``:
    #: never.
    slow_request: float | None = ServerConfig.slow_request_threshold
