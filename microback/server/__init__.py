"""gevent WSGI server: serve any WSGI callable, stop gracefully, log each request.

This package knows only WSGI callables, never the rest of microback, so it serves any WSGI app
(Flask, Falcon, a bare function) as well as ours. Worker processes, reload, TLS and hardened
request limits will be added here.
"""

from __future__ import annotations

from .lifecycle import Server as Server
from .lifecycle import serve as serve
from .listener import ListenError as ListenError
from .logs import configure_logging as configure_logging
from .target import TargetError as TargetError
from .target import TargetImportError as TargetImportError
from .target import load_app as load_app
