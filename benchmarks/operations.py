"""What watching costs: the JSON route over HTTP with metrics and the blocked-loop monitor on,
against the same route with both off, side by side in one run (issue 16 allows 10%).

    python benchmarks/operations.py [--rounds 5] [--duration 5] [--connections 50]

Both servers are ``microback serve`` in one process pinned to CPU 0, ``--log-level warning``
(no access lines, as in benchmarks/server); wrk is pinned to CPU 1. "off" serves
``apps/observed.py:plain`` with ``--blocked-loop-threshold 0 --slow-request-threshold 0``;
"on" serves ``apps/observed.py:observed`` (``enable_metrics``) with the monitor at its
default 0.1 s and the slow-request check at its default 1 s. The
rounds alternate off-on-off-on so that drift on a shared host spreads over both; the report
gives the medians of requests per second and of the server's CPU time per request (the figure
to trust when the host is loaded) and the ratios on/off. Needs wrk (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "server"))

from compare import _measure, _start, _stop

SERVE = "{python} -m microback serve ../apps/observed.py:{app} --port {{port}} --log-level warning"
SERVERS = {
    "off": SERVE.format(python=sys.executable, app="plain")
    + " --blocked-loop-threshold 0 --slow-request-threshold 0",
    "on": SERVE.format(python=sys.executable, app="observed"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed; on Debian or Ubuntu: apt-get install -y wrk", file=sys.stderr)
        return 2
    served = {name: _start(name, command, pinned=True) for name, command in SERVERS.items()}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    try:
        for round_ in range(args.rounds):
            order = list(SERVERS) if round_ % 2 == 0 else list(reversed(SERVERS))
            for name in order:
                run = _measure(served[name], "/json", args)
                runs[name].append(run)
                print(
                    f"round {round_ + 1} {name:>3}: {run['rps']:8.0f} req/s "
                    f"{run['cpu_us_per_request']:6.1f} µs CPU/request, {run['errors']:.0f} errors",
                    flush=True,
                )
    finally:
        for server in served.values():
            _stop(server.process)
    rps = {name: statistics.median(r["rps"] for r in runs[name]) for name in SERVERS}
    cpu = {
        name: statistics.median(r["cpu_us_per_request"] for r in runs[name]) for name in SERVERS
    }
    ratio = rps["on"] / rps["off"]
    print(f"median req/s: off {rps['off']:.0f}, on {rps['on']:.0f}: on/off {ratio:.3f}")
    print(
        f"median CPU µs/request: off {cpu['off']:.1f}, on {cpu['on']:.1f}: "
        f"on/off {cpu['on'] / cpu['off']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
