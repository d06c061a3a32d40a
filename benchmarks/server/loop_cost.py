"""CPU time of microback's connection loop in one process: a steady figure on a busy host.

    python benchmarks/server/loop_cost.py                     # this checkout
    PYTHONPATH=/tmp/old python benchmarks/server/loop_cost.py # another commit's microback/

50 keep-alive connections over TCP loopback, each a client greenlet that sends ``GET /json``
and reads the answer (``apps.py``) and a server greenlet running
:class:`microback.server.connection.Connection`, all in this process's gevent loop. It prints
the process's CPU time per request (client and server together: the client's part is the same
for any two servers compared), the best of ``--repeats`` runs of ``--requests`` requests: the
best is what the code costs, the rest is other load on the host, which only adds. wrk and a
separate server process (``compare.py``) are what count for speed; this is for telling two
versions of the server apart when ``compare.py``'s medians swing by ±20 %.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apps import app  # noqa: E402

import microback.server.connection as connection  # noqa: E402
from microback.server.environ import base_environ  # noqa: E402
from microback.server.limits import Limits  # noqa: E402

REQUEST = b"GET /json HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"microback from {Path(connection.__file__).parents[2]}")
    best = min(_run(args.requests, args.connections) for _ in range(args.repeats))
    print(f"best of {args.repeats}: {best * 1e6 / args.requests:.2f} µs CPU per request")
    return 0


def _run(requests: int, connections: int) -> float:
    site = connection.Site(app=app, limits=Limits(), environ=base_environ("127.0.0.1", "8000"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(connections)
    address = listener.getsockname()
    clients = []
    servers = []
    for _ in range(connections):
        client = socket.create_connection(address)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock, peer = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        servers.append(gevent.spawn(connection.Connection(site, sock, peer).serve))
        clients.append(client)
    each = requests // connections
    started = time.process_time()
    gevent.joinall([gevent.spawn(_client, client, each) for client in clients])
    spent = time.process_time() - started
    for client in clients:
        client.close()
    gevent.joinall(servers)
    listener.close()
    return spent


def _client(sock: socket.socket, count: int) -> None:
    for _ in range(count):
        sock.sendall(REQUEST)
        answer = sock.recv(65536)
        if not answer.endswith(b"}"):
            raise RuntimeError(f"unexpected answer {answer!r}")


if __name__ == "__main__":
    sys.exit(main())
