"""Raw WSGI apps for the server benchmark: no framework, so the figures measure the server.

``/`` answers a plain-text hello, ``/json`` a small JSON object (TechEmpower's first two tests);
a POST reads its body first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

HELLO = b"Hello, World!"


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] == "POST":
        environ["wsgi.input"].read()  # as an app that parses a JSON body (slow_clients.py)
    if environ["PATH_INFO"] == "/json":
        body = json.dumps({"message": "Hello, World!"}).encode()
        content_type = "application/json"
    else:
        body = HELLO
        content_type = "text/plain"
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
