"""Build the PEP 3333 environ of a request from its parsed head.

The environ is a copy of a per-connection base (server name and port, client address and the
constant ``wsgi.*`` keys) plus the request's own keys, so a request costs one dict copy and a
loop over its headers. Header names are turned into ``HTTP_*`` keys through a small cache,
since the same few names arrive on every request.

Values follow PEP 3333: native strings holding latin-1 decoded bytes. ``PATH_INFO`` is
percent-decoded (``/a%20b`` → ``/a b``, ``%2F`` → ``/``) and ``SCRIPT_NAME`` is empty;
``RAW_URI`` keeps the target as sent, for applications that must tell ``%2F`` from ``/``.
Repeated headers are joined with ``,`` (``Cookie`` with ``;``), as RFC 9110 §5.3 allows.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from .files import FileWrapper

if TYPE_CHECKING:
    from .parsing import Message

_KEYS: dict[bytes, str] = {}
_KEYS_MAX = 512  # names seen beyond this are converted on every request, not cached


def _environ_key(name: bytes) -> str:
    key = _KEYS.get(name)
    if key is None:
        text = name.decode("latin-1").upper().replace("-", "_")
        key = text if text in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + text
        if len(_KEYS) < _KEYS_MAX:
            _KEYS[name] = key
    return key


def _never() -> bool:
    return False


def base_environ(
    server_name: str,
    server_port: str,
    url_scheme: str = "http",
    *,
    multiprocess: bool = False,
    draining: Callable[[], bool] = _never,
) -> dict[str, Any]:
    """The keys every request on one socket of a server shares.

    ``microback.draining`` is *draining*, a callable that answers true once the server has
    begun a graceful stop: the one thing the server tells the application (a readiness route
    answers 503 from then on), without the server importing anything of the application's.
    """
    return {
        "microback.draining": draining,
        "SCRIPT_NAME": "",
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url_scheme,
        "wsgi.errors": sys.stderr,
        # Greenlets interleave, but the app is called from one thread in one process.
        "wsgi.multithread": False,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        # wsgi.input ends where the body ends (chunked bodies included): read() is safe.
        "wsgi.input_terminated": True,
    }


def connection_environ(base: dict[str, Any], address: Any) -> dict[str, Any]:
    """*base* plus the client's address, shared by the requests of one connection."""
    environ = base.copy()
    if isinstance(address, tuple) and len(address) >= 2:
        environ["REMOTE_ADDR"] = str(address[0])
        environ["REMOTE_PORT"] = str(address[1])
    else:  # a Unix socket has no client address
        environ["REMOTE_ADDR"] = ""
        environ["REMOTE_PORT"] = ""
    return environ


def request_environ(base: dict[str, Any], message: Message, wsgi_input: Any) -> dict[str, Any]:
    """The environ for *message*: a copy of *base* with the request's keys."""
    environ = base.copy()
    target = message.target
    # The parser has checked the target: a path, "*", or an absolute form (http://host/path?q)
    # whose path and query it gives as message.origin.
    origin = message.origin or target
    if origin == b"*":
        path, query = origin, b""
    else:
        path, _, query = origin.partition(b"?")
        if b"#" in query:
            query = query.partition(b"#")[0]
        elif b"#" in path:
            path = path.partition(b"#")[0]
    environ["REQUEST_METHOD"] = message.method
    environ["PATH_INFO"] = (
        unquote_to_bytes(path).decode("latin-1") if b"%" in path else path.decode("latin-1")
    )
    environ["QUERY_STRING"] = query.decode("latin-1")
    environ["RAW_URI"] = target.decode("latin-1")
    environ["SERVER_PROTOCOL"] = "HTTP/" + message.version
    environ["wsgi.input"] = wsgi_input
    for name, value in message.headers:
        key = _environ_key(name)
        text = value.decode("latin-1")
        if key in environ:
            separator = "; " if key == "HTTP_COOKIE" else ","
            text = environ[key] + separator + text
        environ[key] = text
    return environ
