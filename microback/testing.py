"""Test helpers: a webtest client that also checks the app against the WSGI spec.

Importing this module needs the ``test`` extra (webtest); the runtime package does not.
"""

from __future__ import annotations

from typing import Any
from wsgiref.validate import validator

import webtest

__all__ = ["TestClient"]


class TestClient(webtest.TestApp):  # type: ignore[misc]
    """A webtest ``TestApp`` for a WSGI app, checked by ``wsgiref.validate`` on every call.

    ``client.get("/notes").json`` is the decoded body; a 4xx or 5xx answer raises unless the
    call says ``status=404`` (or ``expect_errors=True``). Pass ``validate=False`` to skip the
    PEP 3333 checks (for an app wrapped in middleware that breaks them on purpose).
    """

    __test__ = False  # not a test class, despite the name

    def __init__(self, app: Any, *, validate: bool = True, **options: Any) -> None:
        super().__init__(validator(app) if validate else app, **options)
