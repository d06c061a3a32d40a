"""CPU cost of the request parser alone: ``RequestParser.feed`` (llhttp and our callbacks).

    python benchmarks/server/parser.py
    mkdir /tmp/old && git archive REV microback | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python benchmarks/server/parser.py

No network and no application: each case feeds the same bytes to one parser again and again
and reports the best of many short samples in microseconds per request (single samples on a
shared host vary by half; the minimum is what the code costs). The second form measures the
parser of another commit, for an A/B in the same conditions. A benchmark, not a test: nothing
here asserts.
"""

from __future__ import annotations

import argparse
import time
import timeit

from microback.server.limits import Limits
from microback.server.parsing import RequestParser

GET = b"GET /json HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
POST = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
)
CASES = [
    ("one GET", GET, 1),
    ("16 pipelined GETs, each", GET * 16, 16),
    ("one POST with Content-Length", POST, 1),
    ("one small chunked POST", CHUNKED, 1),
]


def per_request(data: bytes, requests: int, number: int, repeat: int) -> float:
    parser = RequestParser(Limits())

    def feed() -> None:
        parser.feed(data)
        parser.ready.clear()

    return min(timeit.repeat(feed, number=number, repeat=repeat)) / number / requests * 1e6


def tiny_chunks(chunks: int) -> float:
    """CPU seconds to parse a body of *chunks* one-byte chunks arriving in 64 KiB reads."""
    head = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"1\r\na\r\n" * chunks + b"0\r\n\r\n"
    best = float("inf")
    for _ in range(5):
        parser = RequestParser(Limits(max_body_size=None))
        started = time.process_time()
        parser.feed(head)
        for offset in range(0, len(body), 65536):
            parser.feed(body[offset : offset + 65536])
            if parser.current is not None:
                parser.current.body.clear()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--number", type=int, default=500, help="calls a sample (%(default)s)")
    options.add_argument("--repeat", type=int, default=400, help="samples (%(default)s)")
    args = options.parse_args()
    for name, data, requests in CASES:
        cost = per_request(data, requests, args.number, args.repeat)
        print(f"{name:32} {cost:6.2f} us")
    seconds = tiny_chunks(100_000)
    print(f"{'100,000 one-byte chunks':32} {seconds * 1000:6.0f} ms CPU")


if __name__ == "__main__":
    main()
