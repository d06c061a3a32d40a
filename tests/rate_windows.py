"""Keep tests that count throttled hits inside one rate-limit window.

microback's limits are fixed windows that restart at every multiple of their period (an hour
restarts on the hour, fifteen minutes at :00, :15, :30 and :45). A test that makes N hits and
expects the N+1th refused fails when a window restarts between them, so it starts in a window
with enough time left.
"""

from __future__ import annotations

import time

import pytest


def start_in_a_fresh_window(period: float = 900, needed: float = 30) -> None:
    """Sleep past the next restart of ``period``-second windows if under ``needed`` s are left."""
    left = period - time.time() % period
    if left < needed:
        time.sleep(left + 0.1)


@pytest.fixture
def fresh_rate_window() -> None:
    """Fifteen-minute windows (also the hour and the day) with 30 s to spare."""
    start_in_a_fresh_window()
