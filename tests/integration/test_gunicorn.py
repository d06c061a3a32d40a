"""An ``App`` is a plain WSGI callable: gunicorn's gevent worker runs it as it is."""

from __future__ import annotations

import requests

from .conftest import REPO, gunicorn


def test_gunicorn_gevent_worker_serves_the_hello_example() -> None:
    with gunicorn("hello:app", REPO / "examples") as port:
        response = requests.get(f"http://127.0.0.1:{port}/hello/gunicorn", timeout=10)

    assert response.status_code == 200
    assert response.json() == {"message": "Hello, gunicorn!"}
