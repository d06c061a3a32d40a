"""How evenly ``microback serve --workers 2`` spreads wrk's connections over its workers.

    python benchmarks/server/spread.py                       # this checkout, 5 rounds
    python benchmarks/server/spread.py before=/tmp/old-tree after=.   # two checkouts, A-B

Each checkout's server (``apps:app``, two workers, not pinned) gets ``wrk -t1 -c50 -d3s
/json`` in turn; each run opens its 50 connections at once. Printed per run: requests per
second, each worker's CPU seconds during the run (from /proc), the smaller over the larger
(1.00: even; 0.00: one worker served every connection), and how many of the 50 connections
each worker held one second into the run (its TCP sockets in /proc/PID/net/tcp are the
host's, so they are counted from its open sockets: ``/proc/PID/fd`` against the inodes of
established connections to the port). A benchmark, not a test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from compare import _free_port, _stop, _wait_until_accepting, _wait_until_workers
from procstat import process_tree

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _start(tree: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(HERE)]))
    command = [sys.executable, "-m", "microback", "serve", "apps:app", "--workers", "2"]
    command += ["--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=HERE, env=env, start_new_session=True)
    _wait_until_accepting(port)
    _wait_until_workers(process.pid, 2)
    time.sleep(0.5)
    return process, port


def _connections(pid: int, port: int) -> int:
    """Established TCP connections to *port* that process *pid* holds open."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rpartition(":")[2], 16)
        if local_port == port and fields[3] == "01":  # TCP_ESTABLISHED
            established.add(fields[9])  # the socket's inode
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:[") and target[8:-1] in established:
            held += 1
    return held


def main() -> int:
    trees = dict(arg.split("=", 1) for arg in sys.argv[1:]) or {"this": str(HERE.parents[1])}
    servers = {name: _start(Path(tree).resolve()) for name, tree in trees.items()}
    try:
        for round_ in range(5):
            for name, (process, port) in servers.items():
                workers = sorted(set(process_tree(process.pid)) - {process.pid})
                before = [_cpu(pid) for pid in workers]
                command = ["wrk", "-t1", "-c50", "-d3s", f"http://127.0.0.1:{port}/json"]
                wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                time.sleep(1.0)
                held = [_connections(pid, port) for pid in workers]
                output = wrk.communicate()[0]
                used = [_cpu(pid) - start for pid, start in zip(workers, before, strict=True)]
                rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
                share = min(used) / max(used) if max(used) else 0.0
                print(
                    f"round {round_ + 1} {name:10} {float(rps.group(1)) if rps else 0:7.0f} req/s"
                    f"  worker CPU s {' / '.join(f'{u:.2f}' for u in used)}"
                    f"  smaller/larger {share:.2f}"
                    f"  connections {' / '.join(str(h) for h in held)}",
                    flush=True,
                )
    finally:
        for process, _ in servers.values():
            _stop(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
