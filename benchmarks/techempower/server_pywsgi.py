"""Serve ``wsgi:app`` on gevent.pywsgi, one process: the baseline server configuration.

    BENCH_FRAMEWORK=raw DATABASE_URL=sqlite:///bench.db python server_pywsgi.py PORT

gevent.pywsgi as a user would run it, plus ``TCP_NODELAY`` on the listening socket (accepted
sockets inherit it): without it every keep-alive request after the first waits ~40 ms for a
delayed ACK (gevent#1233). No access log. pywsgi sends a ``Date`` header but no ``Server``.
"""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402
import sys  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402
from wsgi import app  # noqa: E402  (after the patch: it imports peewee)


def main() -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.listen(2048)
    sock.setblocking(False)
    WSGIServer(sock, app, log=None).serve_forever()


if __name__ == "__main__":
    main()
