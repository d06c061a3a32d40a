"""Every use of a private name of huey in microback (one: the task registry).

huey documents no getter for the name it files a task under, so the function here says why it
reaches inside, and ``tests/jobs/test_huey_seam.py`` pins the behaviour relied on: an upgrade
that changes it fails that named test. pyproject.toml bounds huey below its next major version.
"""

from __future__ import annotations

from typing import Any

__all__ = ["task_name"]


def task_name(huey: Any, wrapper: Any) -> str:
    """The name huey's registry (``Huey._registry``) files a task under, ``module.name``.

    It is the name stored with each job and the one a worker looks the function up by.
    """
    name: str = huey._registry.task_to_string(wrapper.task_class)
    return name
