"""Where an app's own files are: the folders of templates and static files.

A relative folder is taken from the folder of the module that creates the extension, as Flask
takes it from the app's package, so ``templates/`` beside ``app.py`` is found whatever the
working directory of ``microback serve`` or pytest is.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["app_folder"]


def app_folder(directory: str | Path, what: str, *, depth: int = 2) -> Path:
    """``directory`` made absolute from the folder of the module ``depth`` frames up.

    ``depth=2`` is the module that called the function calling this one (an extension's
    ``__init__``). A folder that is not there raises ``FileNotFoundError`` naming it.
    """
    # sys._getframe: the documented way to see the caller (inspect.stack() reads every
    # frame's source lines, which costs far more for the same answer).
    filename = sys._getframe(depth).f_globals.get("__file__")
    base = Path(filename).resolve().parent if filename else Path.cwd()
    path = base / directory
    if not path.is_dir():
        raise FileNotFoundError(
            f"{what}: no directory {path}; create it, or pass the folder as directory= "
            "(a relative one is taken from the folder of the module that creates it)"
        )
    return path
