"""``microback serve`` freezes what the app built at start-up out of the collector's passes.

Why: a full collection walked every module, route and model at each pass, ~40 ms for the
TechEmpower app, about once a second under load, and every request in flight waited that
long (microback/server/heap.py). What requests make must still be collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from serving import StartServer, write_module

APP = """
    import gc
    import os
    import weakref

    from microback import App

    app = App(secret_key="heap-test-secret-key-0123456789abcdef")
    ROUTES_BUILT_AT_IMPORT = [{"route": n} for n in range(1000)]
    dropped = {}


    class Node:
        pass


    @app.get("/heap")
    def heap(request):
        return {"pid": os.getpid(), "frozen": gc.get_freeze_count()}


    @app.post("/cycle")
    def make_cycle(request):
        first, second = Node(), Node()
        first.other, second.other = second, first
        dropped["cycle"] = weakref.ref(first)
        return {"made": True}


    @app.get("/cycle")
    def cycle_collected(request):
        gc.collect()
        return {"collected": dropped["cycle"]() is None}
"""


@pytest.mark.parametrize("workers", [None, "2"])
def test_start_up_objects_are_frozen_in_every_serving_process(
    start_server: StartServer, tmp_path: Path, workers: str | None
) -> None:
    write_module(tmp_path, "heapapp.py", APP)
    server = start_server("heapapp:app", *(["--workers", workers] if workers else []))

    seen: dict[int, int] = {}
    for _ in range(60):  # new connections, so the kernel spreads them over the workers
        with requests.Session() as session:
            answer = session.get(server.url + "/heap", timeout=10).json()
        seen[answer["pid"]] = answer["frozen"]
        if len(seen) == int(workers or 1):
            break

    assert len(seen) == int(workers or 1)
    # The app's own 1,000 dicts and everything imported: far more than any request makes.
    assert all(frozen > 10_000 for frozen in seen.values()), seen


def test_a_cycle_a_request_makes_is_still_collected(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(tmp_path, "heapapp.py", APP)
    server = start_server("heapapp:app")

    with requests.Session() as session:
        assert session.post(server.url + "/cycle", timeout=10).status_code == 200
        assert session.get(server.url + "/cycle", timeout=10).json() == {"collected": True}
