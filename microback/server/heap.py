"""Keep what the application built at start-up out of the garbage collector's full passes.

A loaded app holds tens of thousands of objects that live as long as the process (modules,
routes, models, the driver's types): ~63,000 for the TechEmpower app. CPython's collector
walks all of them in every full (generation 2) collection, and under load a full collection
comes about once a second, because the objects of the requests in flight when a younger
collection runs are promoted to the old generation before they die. Each pass stopped the
event loop for ~40 ms, and every request in flight waited those 40 ms. Frozen, the /db p99
went from 78 to 49 ms, Granian's being 34 and 32 in the same runs (benchmarks/server/README.md,
"The /db tail").

:func:`gc.freeze` moves the start-up objects to a generation no collection visits, so a full
pass walks only what requests made (~6,000 objects, 1.6 ms on average). Each worker loads
the app after the fork, so each freezes its own. The price: a reference cycle that exists at
start-up and is dropped later is never freed; an app does not drop what it built to serve
with.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_objects"]


def freeze_startup_objects() -> None:
    """Collect start-up's garbage, then exempt what survives from every later collection."""
    gc.collect()
    gc.freeze()
