"""``--reload``: notice when the application's source changes, by polling modification times.

The master calls :meth:`SourceWatcher.changed` once a second; a ``.py`` file added, removed or
modified under the application's directory starts a reload, the same as SIGHUP: new workers
import the new code, and the old ones stop only once the new ones serve. A change that does
not import (a syntax error half-way through an edit) leaves the old workers serving, and the
next save tries again.

Polling rather than inotify: no dependency, the same on every platform, and a directory of a
few thousand files costs a few milliseconds a second. Directories that are not the
application's own code are skipped: hidden ones (``.git``, ``.venv``), ``__pycache__``,
``node_modules``, and any virtual environment (it holds ``pyvenv.cfg``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_SKIPPED = frozenset(("__pycache__", "node_modules", "site-packages", "dist-packages"))


class SourceWatcher:
    """Remembers the ``.py`` files under *root* and their modification times."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._mtimes = self._scan()

    def changed(self) -> list[str]:
        """Paths (relative to the root) added, removed or modified since the last call."""
        mtimes = self._scan()
        paths = {path for path, mtime in mtimes.items() if self._mtimes.get(path) != mtime}
        paths.update(path for path in self._mtimes if path not in mtimes)
        self._mtimes = mtimes
        return sorted(os.path.relpath(path, self.root) for path in paths)

    def _scan(self) -> dict[str, int]:
        mtimes: dict[str, int] = {}
        for directory, subdirectories, files in os.walk(self.root):
            subdirectories[:] = [
                name
                for name in subdirectories
                if not name.startswith(".")
                and name not in _SKIPPED
                and not os.path.exists(os.path.join(directory, name, "pyvenv.cfg"))
            ]
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    # A file removed while we look is simply not there on this scan.
                    with contextlib.suppress(OSError):
                        mtimes[path] = os.stat(path).st_mtime_ns
        return mtimes
