# mypy: ignore-errors
# (TunedHandler overrides private pywsgi methods that types-gevent does not describe.)
"""Serve ``apps:app`` on gevent.pywsgi: the baseline the server benchmark compares against.

``python pywsgi_server.py PORT`` is gevent.pywsgi as a user would run it, plus ``TCP_NODELAY`` on
the listening socket (without it every keep-alive request after the first waits ~40 ms for a
delayed ACK, gevent#1233, and the comparison would be meaningless). No access log.

``--tuned`` is the other direction the server issue asked to measure: a pywsgi handler subclass
with the two cheap fixes a subclass can make — status line, headers and body in one
``sendall``, and a ``gevent.sleep(0)`` after each keep-alive request. Its parser stays pywsgi's
pure-Python one.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from apps import app  # noqa: E402


class TunedHandler(WSGIHandler):
    """One ``sendall`` for the head and a non-chunked body; yield after each request."""

    def _write_with_headers(self, data: bytes) -> None:
        if self.response_use_chunked:
            super()._write_with_headers(data)
            return
        self.headers_sent = True
        self.finalize_headers()
        towrite = bytearray(b"HTTP/1.1 ")
        towrite += self.status
        towrite += b"\r\n"
        for header, value in self.response_headers:
            towrite += header + b": " + value + b"\r\n"
        towrite += b"\r\n"
        towrite += data
        self._sendall(towrite)

    def handle_one_request(self) -> Any:
        result = super().handle_one_request()
        gevent.sleep(0)
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--tuned", action="store_true")
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(2048)
    sock.setblocking(False)
    kwargs: dict[str, Any] = {"log": None}
    if args.tuned:
        kwargs["handler_class"] = TunedHandler
    WSGIServer(sock, app, **kwargs).serve_forever()


if __name__ == "__main__":
    main()
