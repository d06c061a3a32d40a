"""What the server benchmarks read from Linux's /proc: a server's processes, CPU time, memory.

A server with workers is a master and its children (``microback serve --workers 2``, gunicorn):
reading the master alone gives the CPU time of a process that only supervises, ~0 per
request. So CPU time is summed over the whole process tree. No psutil: /proc is enough, and
the benchmarks should need nothing the dev install lacks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name, from ``state`` (index 0) on.

    The name is in parentheses and may itself hold spaces or parentheses, so the split is at
    the last ``)``. Raises ``OSError`` when the process is gone.
    """
    return (PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()


def parents() -> dict[int, int]:
    """Every process's parent, pid -> ppid, read in one pass (processes that vanish meanwhile
    are left out)."""
    links = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                links[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    return links


def process_tree(pid: int) -> list[int]:
    """*pid* and all its descendants, parents before children.

    Walks ppid links rather than ``/proc/<pid>/task/*/children``, which needs a kernel built
    with ``CONFIG_PROC_CHILDREN`` and lists only the children of each thread.
    """
    children: dict[int, list[int]] = {}
    for child, parent in parents().items():
        children.setdefault(parent, []).append(child)
    tree, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        tree.append(current)
        queue.extend(sorted(children.get(current, [])))
    return tree


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of *pid*, including that of its children it has reaped.

    ``cutime``/``cstime`` hold the CPU of children waited for, so a worker that exits and is
    reaped by its master keeps counting (in the master) instead of vanishing. 0.0 when the
    process is gone.
    """
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of *pid* and every descendant so far, in seconds.

    The difference of two readings is the CPU the server spent in between, workers included:
    a worker that did not exist at the first reading counts from 0, and one that exited and was
    reaped in between is still counted, through its parent's ``cutime``/``cstime``.
    """
    return sum(cpu_seconds(member) for member in process_tree(pid))


def status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS`` now, ``VmHWM`` at peak); None when
    the process is gone or has no such field (a zombie has no memory)."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def open_fds(pid: int) -> int:
    """How many file descriptors *pid* has open (connections, for a server): 0 when gone."""
    try:
        return len(os.listdir(PROC / str(pid) / "fd"))
    except OSError:
        return 0
