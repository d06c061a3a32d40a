"""gevent WSGI server: serve any WSGI callable, stop gracefully, log each request.

This package knows only WSGI callables, never the rest of microback, so it serves any WSGI app
(Flask, Falcon, a bare function) as well as ours. HTTP/1.1 is parsed strictly by llhttp
(through httptools) on gevent's ``StreamServer``: ``parsing`` reads requests, ``environ``
builds the WSGI environ, ``body`` is ``wsgi.input``, ``response`` writes responses,
``connection`` runs one client's requests, ``limits`` bounds them and ``lifecycle`` starts and
stops the server. Worker processes, reload and TLS will be added here.
"""

from __future__ import annotations

from .errors import ClientError as ClientError
from .files import FileWrapper as FileWrapper
from .lifecycle import Server as Server
from .lifecycle import serve as serve
from .limits import Limits as Limits
from .listener import ListenError as ListenError
from .logs import configure_logging as configure_logging
from .target import TargetError as TargetError
from .target import TargetImportError as TargetImportError
from .target import load_app as load_app
