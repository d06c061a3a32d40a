"""In-process speed of a JSON route: ``app(environ, start_response)`` in a loop, no network.

Every framework answers ``GET /json`` with ``{"message": "Hello, World!"}`` and
``GET /users/<id>`` with ``{"id": id}``; the same prebuilt environ is replayed, and each
figure is the best of several short samples (single samples vary 50-70% on a shared host).
Frameworks that are not installed are skipped. Ratios are against raw WSGI and Flask, taken
in this same run.

    python benchmarks/inprocess.py [--samples 7] [--seconds 0.3]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
MESSAGE = {"message": "Hello, World!"}


def raw_wsgi() -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/json":
            body = json.dumps(MESSAGE).encode()
        elif path.startswith("/users/"):
            body = json.dumps({"id": int(path[7:])}).encode()
        else:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def microback_app() -> WSGIApp:
    import logging

    logging.getLogger("microback").setLevel(logging.ERROR)  # the random-secret warning
    from microback import App

    app = App()

    @app.get("/json")
    def hello(request: Any) -> Any:
        return MESSAGE

    @app.get("/users/<int:user_id>")
    def user(request: Any, user_id: int) -> Any:
        return {"id": user_id}

    return app


def flask_app() -> WSGIApp:
    from flask import Flask

    app = Flask(__name__)

    @app.get("/json")
    def hello() -> Any:
        return MESSAGE

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> Any:
        return {"id": user_id}

    return app


def falcon_app() -> WSGIApp:
    import falcon

    class Hello:
        def on_get(self, req: Any, resp: Any) -> None:
            resp.media = MESSAGE

    class User:
        def on_get(self, req: Any, resp: Any, user_id: int) -> None:
            resp.media = {"id": user_id}

    app = falcon.App()
    app.add_route("/json", Hello())
    app.add_route("/users/{user_id:int}", User())
    return app  # type: ignore[no-any-return]


def bottle_app() -> WSGIApp:
    import bottle

    app = bottle.Bottle()

    @app.get("/json")
    def hello() -> Any:
        return MESSAGE

    @app.get("/users/<user_id:int>")
    def user(user_id: int) -> Any:
        return {"id": user_id}

    return app  # type: ignore[no-any-return]


FRAMEWORKS: dict[str, Callable[[], WSGIApp]] = {
    "raw WSGI": raw_wsgi,
    "microback": microback_app,
    "Falcon": falcon_app,
    "Bottle": bottle_app,
    "Flask": flask_app,
}


def environ_for(path: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def requests_per_second(app: WSGIApp, path: str, samples: int, seconds: float) -> float:
    base = environ_for(path)
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def once() -> None:
        body = app(dict(base), start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    once()
    if not statuses[-1].startswith("200"):
        raise SystemExit(f"{path} answered {statuses[-1]}, not 200")
    best = 0.0
    for _ in range(samples):
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            for _ in range(200):
                once()
            count += 200
        best = max(best, count / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3)
    options = parser.parse_args()
    apps: dict[str, WSGIApp] = {}
    for name, build in FRAMEWORKS.items():
        try:
            apps[name] = build()
        except ImportError:
            print(f"({name} is not installed; skipped)")
    for label, path in (("JSON route", "/json"), ("param route", "/users/42")):
        results = {
            name: requests_per_second(app, path, options.samples, options.seconds)
            for name, app in apps.items()
        }
        raw = results["raw WSGI"]
        flask = results.get("Flask")
        print(f"\n{label} (GET {path}), best of {options.samples} x {options.seconds}s")
        print(f"{'framework':<10} {'req/s':>9} {'µs/req':>7} {'+µs vs raw':>10} {'x Flask':>8}")
        for name, rate in results.items():
            added = 1e6 / rate - 1e6 / raw
            versus = f"{rate / flask:8.2f}" if flask else "       -"
            print(f"{name:<10} {rate:9.0f} {1e6 / rate:7.1f} {added:10.1f} {versus}")


if __name__ == "__main__":
    main()
