"""Log-out ends a session everywhere: two ``microback serve`` processes share one database.

Each server is its own process (as two hosts behind a load balancer would be), with the same
secret key and database, on every selected backend. A cookie copied before log-out on one
server is refused by both afterwards.
"""

from __future__ import annotations

from pathlib import Path

import requests
from serving import StartServer, write_module

from microback import App
from microback.db import Database
from microback.security import Auth
from microback.testing import database_servers, database_url

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest

SECRET = "logout-across-processes-secret-0123456789"
PASSWORD = "correct horse battery staple"

APP = """
    from microback import App, abort
    from microback.db import Database
    from microback.security import Auth, login_required

    app = App(secret_key={secret!r})
    db = Database(app, {url!r})
    auth = Auth(app, db, password_rounds=10, login_url="/login")


    @app.post("/login")
    def login(request):
        user = auth.authenticate(request, request.json["email"], request.json["password"])
        if user is None:
            abort(401, "wrong e-mail address or password")
        auth.login(request, user)
        return {{"id": user.id}}


    @app.post("/logout")
    def logout(request):
        auth.logout(request)
        return {{}}


    @app.get("/me")
    @login_required
    def me(request):
        return {{"id": request.user.id}}
"""


def test_a_cookie_copied_before_logout_is_refused_by_every_process(
    database_url: str, tmp_path: Path, start_server: StartServer
) -> None:
    setup = App(secret_key=SECRET)
    db = Database(setup, database_url)
    auth = Auth(setup, db, password_rounds=10)
    db.create_tables()
    user = auth.create_user("ada@example.org", PASSWORD)
    db.close_all()

    write_module(tmp_path, "shared.py", APP.format(secret=SECRET, url=database_url))
    one = start_server("shared:app", cwd=tmp_path)
    two = start_server("shared:app", cwd=tmp_path)

    browser = requests.Session()
    credentials = {"email": "ada@example.org", "password": PASSWORD}
    assert browser.post(f"{one.url}/login", json=credentials, timeout=30).status_code == 200
    copied = browser.cookies["session"]
    for server in (one, two):  # the session is good on both hosts
        answer = requests.get(f"{server.url}/me", cookies={"session": copied}, timeout=30)
        assert answer.json() == {"id": user.id}

    assert browser.post(f"{two.url}/logout", timeout=30).status_code == 200

    for server in (one, two):
        api = requests.get(f"{server.url}/me", cookies={"session": copied}, timeout=30)
        assert api.status_code == 401, api.text
        page = requests.get(
            f"{server.url}/me",
            cookies={"session": copied},
            headers={"Accept": "text/html"},
            allow_redirects=False,
            timeout=30,
        )
        assert page.status_code == 303 and page.headers["Location"].startswith("/login?")
