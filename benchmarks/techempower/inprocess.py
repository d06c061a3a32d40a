"""In-process microbenchmarks: ``app(environ, start_response)`` in a loop, no network.

    python benchmarks/techempower/inprocess.py                   # ~1.5 minutes
    python benchmarks/techempower/inprocess.py --samples 3 --seconds 0.1 --no-save
    python benchmarks/techempower/inprocess.py --scenario "cookies + session" --no-save

The same five implementations as the HTTP suite (raw WSGI routes with a dict and a regex of
its own), each with these routes: ``/json``, ``/users/<int>`` (a param route), ``/session``
(reads a cookie and a signed-cookie session, counts a visit, so the session is written
back), and N routes ``/items<i>/<int>``. Scenarios:

- routing with 10, 100 and 1,000 routes: the last ``/items<i>/42`` added, the worst case
  for a router that tries routes in order;
- JSON, the param route, cookies + session (three cookies and the session), and a 404 —
  with 10 routes;
- microback only: a signed-in user (``Auth`` on an in-memory SQLite database, a
  ``@login_required`` route): the session cookie is verified and the user loaded, with the
  check that the session was not ended by a log-out in the same query. Run it against an older
  checkout (``PYTHONPATH=<checkout> ... --frameworks microback``) to see what a change costs;
  on a busy host, ``--clock cpu`` counts this process's CPU time only, not its waits for a CPU.
- microback only: the fortunes page of the TechEmpower app (12 rows read from a SQLite file,
  one added, sorted, 13 rows of HTML) rendered from its Jinja2 template, and the same page
  built by hand with an f-string and ``html.escape``: the difference is what the template
  costs a request.

Each figure is the best of ``--samples`` samples of ``--seconds`` (single samples vary
50-70% on a shared host); ratios are taken within the run. Every scenario is checked once
first (status, and for the session that the cookie sent back was read). Results are saved in
``results/`` and ``results/history.jsonl``, and ``render.py`` puts them in
``results/latest.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import record
import verify
from suite import FRAMEWORKS, LABELS

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SECRET = "in-process-benchmark-secret-key-0123456789"
MESSAGE = {"message": "Hello, World!"}
COOKIES = "theme=dark; lang=en; tracking=0f3a9c"
ROUTE_COUNTS = (10, 100, 1000)
#: name: (routes in the app, path, expected status)
SCENARIOS = {
    **{f"routing, {n:,} routes": (n, f"/items{n - 1}/42", 200) for n in ROUTE_COUNTS},
    "JSON": (10, "/json", 200),
    "param route": (10, "/users/42", 200),
    "cookies + session": (10, "/session", 200),
    "404": (10, "/nowhere", 404),
}
SIGNED_IN = "signed-in user (Auth)"
#: --clock: wall time, or the CPU time of this process (not counting waits for a CPU).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
FORTUNES_TEMPLATE = "fortunes, template"
FORTUNES_BY_HAND = "fortunes, by hand"
#: Scenarios only microback has; measured on apps of their own (they have a database).
MICROBACK_ONLY = {
    SIGNED_IN: (10, "/me", 200),
    FORTUNES_TEMPLATE: (0, "/fortunes", 200),
    FORTUNES_BY_HAND: (0, "/fortunes", 200),
}


def session_serializer() -> Any:
    """The signed-cookie format Falcon and raw WSGI use (they have none of their own):
    itsdangerous with HMAC-SHA256, as microback's sessions."""
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(
        SECRET, salt="session", signer_kwargs={"digest_method": hashlib.sha256}
    )


def raw_wsgi(routes: int) -> WSGIApp:
    serializer = session_serializer()
    item = re.compile(r"/items(\d+)/(\d+)\Z")
    user = re.compile(r"/users/(\d+)\Z")

    def respond(start_response: Any, body: Any, headers: Iterable[tuple[str, str]] = ()) -> list:
        data = json.dumps(body).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
        )
        return [data]

    def json_(environ: dict[str, Any], start_response: Any) -> list:
        return respond(start_response, MESSAGE)

    def session(environ: dict[str, Any], start_response: Any) -> list:
        cookies = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        data: dict[str, Any] = {}
        if "session" in cookies:
            try:
                data = serializer.loads(cookies["session"].value, max_age=14 * 24 * 3600)
            except Exception:
                data = {}
        data["visits"] = data.get("visits", 0) + 1
        theme = cookies["theme"].value if "theme" in cookies else None
        cookie = f"session={serializer.dumps(data)}; HttpOnly; Path=/; SameSite=Lax"
        return respond(
            start_response, {"theme": theme, "visits": data["visits"]}, [("Set-Cookie", cookie)]
        )

    static = {"/json": json_, "/session": session}

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        handler = static.get(path)
        if handler is not None:
            return handler(environ, start_response)
        if match := user.match(path):
            return respond(start_response, {"id": int(match.group(1))})
        if (match := item.match(path)) and int(match.group(1)) < routes:
            return respond(start_response, {"id": int(match.group(2))})
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        return [b"Not Found"]

    return app


def microback_app(routes: int) -> WSGIApp:
    from microback import App
    from microback.security import CookieSessions

    app = App(secret_key=SECRET)
    CookieSessions(app)

    @app.get("/json")
    def hello(request: Any) -> Any:
        return MESSAGE

    @app.get("/users/<int:user_id>")
    def user(request: Any, user_id: int) -> Any:
        return {"id": user_id}

    @app.get("/session")
    def session(request: Any) -> Any:
        request.session["visits"] = request.session.get("visits", 0) + 1
        return {"theme": request.cookies.get("theme"), "visits": request.session["visits"]}

    def item(request: Any, item_id: int) -> Any:
        return {"id": item_id}

    for i in range(routes):
        app.add_route(f"/items{i}/<int:item_id>", item, ["GET"], endpoint=f"item{i}")
    return app


def microback_signed_in_app() -> WSGIApp:
    """``Auth`` with its default sessions, one user, and a route behind ``@login_required``."""
    from microback import App
    from microback.db import Database
    from microback.security import Auth, login_required

    app = App(secret_key=SECRET)
    db = Database(app, "sqlite:///:memory:")
    auth = Auth(app, db)
    db.create_tables()
    ada = auth.User.create(email="ada@example.org")

    @app.get("/signin")
    def signin(request: Any) -> Any:
        auth.login(request, ada)
        return {}

    @app.get("/me")
    @login_required
    def me(request: Any) -> Any:
        return {"id": request.user.id}

    return app


def microback_fortunes_app(database: Path, *, by_hand: bool) -> WSGIApp:
    """The TechEmpower app on a filled SQLite file, its fortunes page templated or by hand."""
    import app_microback
    import setup_db

    if not database.exists():
        setup_db.fill_sqlite(database)
    return app_microback.create_app(f"sqlite:///{database}", by_hand=by_hand)


def microback_only_apps(directory: Path) -> dict[str, WSGIApp]:
    """The app each microback-only scenario is measured on."""
    database = directory / "fortunes.db"
    return {
        SIGNED_IN: microback_signed_in_app(),
        FORTUNES_TEMPLATE: microback_fortunes_app(database, by_hand=False),
        FORTUNES_BY_HAND: microback_fortunes_app(database, by_hand=True),
    }


def flask_app(routes: int) -> WSGIApp:
    from flask import Flask, request, session

    app = Flask(__name__)
    app.secret_key = SECRET

    @app.get("/json")
    def hello() -> Any:
        return MESSAGE

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> Any:
        return {"id": user_id}

    @app.get("/session")
    def visits() -> Any:
        session["visits"] = session.get("visits", 0) + 1
        return {"theme": request.cookies.get("theme"), "visits": session["visits"]}

    def item(item_id: int) -> Any:
        return {"id": item_id}

    for i in range(routes):
        app.add_url_rule(f"/items{i}/<int:item_id>", f"item{i}", item)
    return app


def falcon_app(routes: int) -> WSGIApp:
    import falcon

    serializer = session_serializer()

    class Hello:
        def on_get(self, req: Any, resp: Any) -> None:
            resp.media = MESSAGE

    class User:
        def on_get(self, req: Any, resp: Any, user_id: int) -> None:
            resp.media = {"id": user_id}

    class Session:
        def on_get(self, req: Any, resp: Any) -> None:
            data: dict[str, Any] = {}
            if "session" in req.cookies:
                try:
                    data = serializer.loads(req.cookies["session"], max_age=14 * 24 * 3600)
                except Exception:
                    data = {}
            data["visits"] = data.get("visits", 0) + 1
            resp.set_cookie("session", serializer.dumps(data), same_site="Lax", secure=False)
            resp.media = {"theme": req.cookies.get("theme"), "visits": data["visits"]}

    class Item:
        def on_get(self, req: Any, resp: Any, item_id: int) -> None:
            resp.media = {"id": item_id}

    app = falcon.App()
    app.add_route("/json", Hello())
    app.add_route("/users/{user_id:int}", User())
    app.add_route("/session", Session())
    items = Item()
    for i in range(routes):
        app.add_route(f"/items{i}/{{item_id:int}}", items)
    return app


def bottle_app(routes: int) -> WSGIApp:
    import bottle

    app = bottle.Bottle()

    @app.get("/json")
    def hello() -> Any:
        return MESSAGE

    @app.get("/users/<user_id:int>")
    def user(user_id: int) -> Any:
        return {"id": user_id}

    @app.get("/session")
    def session() -> Any:
        # Bottle's signed cookies; a JSON string inside, since pickling other values is
        # deprecated.
        data = json.loads(bottle.request.get_cookie("session", "{}", secret=SECRET))
        data["visits"] = data.get("visits", 0) + 1
        bottle.response.set_cookie(
            "session", json.dumps(data), secret=SECRET, httponly=True, path="/"
        )
        return {"theme": bottle.request.get_cookie("theme"), "visits": data["visits"]}

    def item(item_id: int) -> Any:
        return {"id": item_id}

    for i in range(routes):
        app.route(f"/items{i}/<item_id:int>", "GET", item, name=f"item{i}")
    return app


BUILDERS: dict[str, Callable[[int], WSGIApp]] = {
    "raw": raw_wsgi,
    "microback": microback_app,
    "falcon": falcon_app,
    "bottle": bottle_app,
    "flask": flask_app,
}


def environ_for(path: str, cookie: str | None = None) -> dict[str, Any]:
    environ = {
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
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def call(app: WSGIApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    answer: list[Any] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        answer[:] = [status, headers]

    body = app(dict(environ), start_response)
    try:
        data = b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    return answer[0], answer[1], data


def session_cookie(app: WSGIApp, path: str) -> str:
    """The ``session=...`` cookie that a GET of ``path`` sets."""
    _, headers, _ = call(app, environ_for(path))
    return next(
        value.split(";")[0]
        for header, value in headers
        if header.lower() == "set-cookie" and value.startswith("session=")
    )


def prepare(name: str, app: WSGIApp, scenario: str) -> dict[str, Any]:
    """The environ for ``scenario``, after checking the app answers it as expected."""
    _, path, expected = {**SCENARIOS, **MICROBACK_ONLY}[scenario]
    cookie = None
    if scenario == "cookies + session":
        # A first visit gives the session cookie; the measured request sends it back.
        cookie = f"{COOKIES}; {session_cookie(app, path)}"
    elif scenario == SIGNED_IN:
        cookie = f"{COOKIES}; {session_cookie(app, '/signin')}"
    environ = environ_for(path, cookie)
    status, headers, body = call(app, environ)
    if int(status[:3]) != expected:
        raise SystemExit(f"{name}: {scenario} ({path}) answered {status}, not {expected}")
    if scenario == "cookies + session" and json.loads(body) != {"theme": "dark", "visits": 2}:
        raise SystemExit(f"{name}: the session cookie sent back was not read: {body!r}")
    if scenario == SIGNED_IN and "id" not in json.loads(body):
        raise SystemExit(f"{name}: the signed-in user was not recognised: {body!r}")
    if scenario in (FORTUNES_TEMPLATE, FORTUNES_BY_HAND):
        lower = {header.lower(): value for header, value in headers}
        if verify.problems("fortunes", 200, lower, body):
            raise SystemExit(f"{name}: {scenario} is not TechEmpower's fortunes page: {body!r}")
    return environ


def microseconds(
    app: WSGIApp,
    environ: dict[str, Any],
    samples: int,
    seconds: float,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Best time per call over ``samples`` samples of about ``seconds`` each, by ``clock``."""

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        pass

    best = float("inf")
    for _ in range(samples):
        count, started = 0, clock()
        while (elapsed := clock() - started) < seconds:
            for _ in range(100):
                body = app(dict(environ), start_response)
                for _ in body:
                    pass
                if hasattr(body, "close"):
                    body.close()
            count += 100
        best = min(best, elapsed * 1e6 / count)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--no-save", dest="save", action="store_false")
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        default="wall",
        help="cpu: this process's CPU time, which other work on a shared host does not add to",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[*SCENARIOS, *MICROBACK_ONLY],
        help="run only this scenario (repeat for more); all by default",
    )
    options = parser.parse_args()
    chosen = set(options.scenario or [*SCENARIOS, *MICROBACK_ONLY])
    scenarios = {name: spec for name, spec in SCENARIOS.items() if name in chosen}

    frameworks = []
    apps: dict[tuple[str, int], WSGIApp] = {}
    for name in options.frameworks.split(","):
        try:
            for routes in ROUTE_COUNTS:
                apps[(name, routes)] = BUILDERS[name](routes)
        except ImportError:
            print(f"({LABELS[name]} is not installed: skipped)")
            continue
        frameworks.append(name)

    summary = []
    timing = (options.samples, options.seconds, CLOCKS[options.clock])
    print(f"µs per call ({options.clock} clock), best of {options.samples} x {options.seconds}s")
    print(f"{'scenario':22}" + "".join(f"{LABELS[f]:>11}" for f in frameworks))
    for scenario, (routes, _, _) in scenarios.items():
        line = f"{scenario:22}"
        for name in frameworks:
            app = apps[(name, routes)]
            environ = prepare(name, app, scenario)
            us = microseconds(app, environ, *timing)
            summary.append({"scenario": scenario, "framework": name, "us": round(us, 2)})
            line += f"{us:11.1f}"
        print(line, flush=True)
    if "microback" in frameworks and chosen & set(MICROBACK_ONLY):
        with tempfile.TemporaryDirectory() as directory:
            for scenario, app in microback_only_apps(Path(directory)).items():
                if scenario not in chosen:
                    continue
                us = microseconds(app, prepare("microback", app, scenario), *timing)
                summary.append(
                    {"scenario": scenario, "framework": "microback", "us": round(us, 2)}
                )
                column = frameworks.index("microback")
                print(f"{scenario:22}" + f"{'-':>11}" * column + f"{us:11.1f}")
            if {FORTUNES_TEMPLATE, FORTUNES_BY_HAND} <= chosen:
                template = next(r["us"] for r in summary if r["scenario"] == FORTUNES_TEMPLATE)
                by_hand = next(r["us"] for r in summary if r["scenario"] == FORTUNES_BY_HAND)
                print(
                    f"\nthe fortunes template costs {template - by_hand:+.1f} µs a request "
                    f"({template / by_hand:.2f}x the page built by hand)"
                )

    by = {(r["scenario"], r["framework"]): r["us"] for r in summary}
    if "microback" in frameworks:
        print("\nmicroback's speed relative to each (their µs / microback's µs)")
        for scenario in scenarios:
            ours = by[(scenario, "microback")]
            print(
                f"{scenario:22}"
                + "".join(f"{by[(scenario, f)] / ours:10.2f}x" for f in frameworks)
            )
    if options.save:
        import render

        data = {
            "options": {
                "samples": options.samples,
                "seconds": options.seconds,
                "clock": options.clock,
                "frameworks": frameworks,
                "command": " ".join(
                    ["python", "benchmarks/techempower/inprocess.py", *sys.argv[1:]]
                ),
            }
        }
        path = record.save("inprocess", data, summary)
        print(f"\nwritten to {path.relative_to(record.REPO)} and results/history.jsonl")
        for written in render.render():
            print(f"rendered {written.relative_to(record.REPO)}")


if __name__ == "__main__":
    main()
