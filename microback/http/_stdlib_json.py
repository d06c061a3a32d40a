"""Every use of an internal of the standard library's ``json`` module, in one place (issue 13).

``json.encoder.c_make_encoder`` is undocumented; ``tests/test_http_json_seam.py`` pins what
microback relies on, so a Python release that changes it fails that test by name (and
:func:`microback.http.json_dumps` falls back to ``JSONEncoder.encode`` when it is absent).
"""

from __future__ import annotations

import json.encoder
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["compact_c_encoder"]

CEncoder = Callable[[Any, int], Iterable[str]]


def compact_c_encoder(default: Callable[[Any], Any]) -> CEncoder | None:
    """json's C encoder made once: ``JSONEncoder.encode()`` builds it anew on every call.

    Compact separators, non-ASCII kept, NaN refused, keys unsorted; no dict of the objects
    being encoded (one shared dict would be corrupted by concurrent calls), so a value that
    contains itself ends in the C recursion guard (``RecursionError``). ``None`` when Python
    runs without the C accelerator.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    encoder: CEncoder = make(
        None, default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    return encoder
