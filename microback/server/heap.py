"""Keep what the application built at start-up out of the garbage collector's full passes.

A loaded app holds tens of thousands of objects that live as long as the process (modules,
routes, models, the driver's types): ~63,000 for the TechEmpower app. CPython's collector
walks all of them in every full (generation 2) collection, and under load a full collection
comes about once a second, because the objects of the requests in flight when a younger
collection runs are promoted to the old generation before they die. Each pass stopped the
event loop for ~40 ms, and every request in flight then waited those 40 ms: that was the /db
p99 of 52-108 ms against 19-24 ms at the 90th percentile (benchmarks/server/README.md,
"The /db tail").

:func:`gc.freeze` moves the start-up objects to a generation no collection visits, so a full
pass walks only what requests made (~6,000 objects, under 3 ms). It is what the Python
documentation advises for forking servers, and a worker gains memory too: pages no
collection writes to stay shared with nothing else to copy. The price: a reference cycle that
exists at start-up and is dropped later is never freed; an app does not drop what it built to
serve with.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_objects"]


def freeze_startup_objects() -> None:
    """Collect start-up's garbage, then exempt what survives from every later collection."""
    gc.collect()
    gc.freeze()
