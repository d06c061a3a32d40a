"""The server's settings and their defaults, in one place.

``microback serve`` builds one :class:`ServerConfig` from its options (their defaults shown in
``--help`` are these), and the same object goes to :class:`~.server.Server`, or through
:class:`~.worker.WorkerConfig` to every worker. Each field is checked when the object is made,
so a wrong value fails at start-up, naming the setting.
"""

from __future__ import annotations

import dataclasses
import ssl

from .blocked import DEFAULT_THRESHOLD
from .limits import Limits
from .listener import DEFAULT_BACKLOG
from .slow import DEFAULT_THRESHOLD as DEFAULT_SLOW_REQUEST

__all__ = ["ServerConfig"]


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """How one server process serves: its caps, its stop, its per-request limits, TLS.

    Two caps, because what they bound costs very different amounts (see :mod:`.server`).
    """

    #: Open connections one process holds at most (``--connections``); more wait in the
    #: kernel's accept queue. ``microback serve`` and ``serve()`` fit it to the open file limit.
    connections: int = 10_000
    #: Requests inside the application at once (``--max-concurrent-requests``); more wait for
    #: a slot on their open connection.
    max_concurrent_requests: int = 1000
    #: How long a stop waits, in seconds, for requests in flight (``--graceful-timeout``).
    graceful_timeout: float = 30.0
    #: How long a stop goes on accepting after telling the app it drains (``--drain-delay``).
    drain_delay: float = 0.0
    #: The shortest block of the event loop warned about, in seconds; ``None`` turns the check
    #: off (``--blocked-loop-threshold``, see :mod:`.blocked`).
    blocked_loop_threshold: float | None = DEFAULT_THRESHOLD
    #: Requests taking longer than this, in seconds, get a warning line with where the time
    #: went; ``None`` turns it off (``--slow-request-threshold``, see :mod:`.slow`).
    slow_request_threshold: float | None = DEFAULT_SLOW_REQUEST
    #: The listen() backlog of the sockets the server binds itself.
    backlog: int = DEFAULT_BACKLOG
    #: Per-request limits (see :class:`~.limits.Limits`).
    limits: Limits = dataclasses.field(default_factory=Limits)
    #: Makes every socket speak TLS (see :func:`~.tls.make_ssl_context`).
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        for name in ("connections", "max_concurrent_requests"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
        for name in ("graceful_timeout", "drain_delay"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be 0 or more seconds, not {value}")
        slow = self.slow_request_threshold
        if slow is not None and not slow > 0:
            raise ValueError(
                f"slow_request_threshold must be more than 0 seconds (None: off), not {slow}"
            )
