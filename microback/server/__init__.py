"""gevent WSGI server: serve any WSGI callable, in worker processes, stop gracefully, reload.

This package knows only WSGI callables, never the rest of microback, so it serves any WSGI app
(Flask, Falcon, a bare function) as well as ours. HTTP/1.1 is parsed strictly by llhttp
(through httptools) on gevent's ``StreamServer``: ``parsing`` reads requests, ``environ``
builds the WSGI environ, ``body`` is ``wsgi.input``, ``response`` writes responses
(``ResponseWriter``), ``connection`` runs one client's requests, ``waiting`` keeps the
connections waiting on their client (to free a place, to drain), ``limits`` bounds each
request, ``listener`` binds the sockets (TCP and Unix), ``tls`` handshakes, ``fdlimit`` fits
the connection cap to the open file limit, ``config`` holds the settings, and ``server``
starts and stops a ``Server`` in one process. With workers, ``master`` forks and supervises
them, ``worker`` is what runs in each, ``heartbeat`` tells the master a worker's event loop
still runs, and ``reload`` watches the source files. ``logs`` and ``access_log`` write the
log; ``_gevent`` holds every use of gevent's internals.
"""

from __future__ import annotations

from .errors import ClientError as ClientError
from .files import FileWrapper as FileWrapper
from .limits import Limits as Limits
from .listener import ListenError as ListenError
from .logs import configure_logging as configure_logging
from .master import BootError as BootError
from .master import Master as Master
from .server import Server as Server
from .server import serve as serve
from .target import TargetError as TargetError
from .target import TargetImportError as TargetImportError
from .target import load_app as load_app
from .tls import TLSConfigError as TLSConfigError
from .tls import make_ssl_context as make_ssl_context
from .worker import WorkerConfig as WorkerConfig
