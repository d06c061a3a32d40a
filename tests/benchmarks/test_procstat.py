"""The server benchmarks' CPU time of a process tree, on real processes: the figure that was ~0
for servers with workers when only the master was read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "server"))

import procstat

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

#: A worker: burns 0.3 s of CPU, says so, and stays alive until its stdin closes.
WORKER = """
import sys, time
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
print("burnt", flush=True)
sys.stdin.read()
"""
#: A master: starts the worker, does nothing itself, reaps it, says so, and waits to be killed.
MASTER = f"""
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", {WORKER!r}]).wait()
print("reaped", flush=True)
time.sleep(60)
"""


def test_a_workers_cpu_counts_while_it_runs_and_after_its_master_reaps_it():
    with subprocess.Popen(
        [sys.executable, "-c", MASTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as master:
        assert master.stdin and master.stdout
        try:
            assert master.stdout.readline() == "burnt\n"
            tree = procstat.process_tree(master.pid)
            assert tree[0] == master.pid and len(tree) == 2
            assert procstat.cpu_seconds(master.pid) < 0.25  # the master alone: read before
            assert procstat.tree_cpu_seconds(master.pid) >= 0.29

            master.stdin.close()  # the worker exits; the master reaps it
            assert master.stdout.readline() == "reaped\n"
            assert procstat.process_tree(master.pid) == [master.pid]
            assert procstat.cpu_seconds(master.pid) >= 0.29  # through cutime/cstime
            assert procstat.tree_cpu_seconds(master.pid) >= 0.29
        finally:
            master.kill()


def test_memory_and_descriptors_of_a_live_process_and_of_a_gone_one():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert procstat.status_kb(process.pid, "VmRSS") is None
    assert procstat.cpu_seconds(process.pid) == 0.0
    rss = procstat.status_kb(os.getpid(), "VmRSS")
    assert rss is not None and rss > 1000
    assert procstat.open_fds(os.getpid()) >= 3
