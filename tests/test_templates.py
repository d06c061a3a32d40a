"""``Templates`` and ``render``: escaped pages with the CSRF field, URLs, the user, flashes."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from microback import App, Templates, flash, redirect, render
from microback.db import Database
from microback.security import Auth, CookieSessions, Csrf
from microback.testing import TestClient

SECRET = "templates-test-secret-0123456789abcdef"
REPO = Path(__file__).resolve().parents[1]


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder


def token_of(page: str) -> str:
    found = re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)">', page)
    assert found, page
    return found.group(1)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write(
        tmp_path / "templates",
        {
            "base.html": """
                <!doctype html>
                <title>{% block title %}{% endblock %}</title>
                {% for category, message in get_flashed_messages(with_categories=true) %}
                <p class="{{ category }}">{{ message }}</p>
                {% endfor %}
                {% block body %}{% endblock %}
            """,
            "page.html": """
                {% extends "base.html" %}
                {% block title %}{{ title }}{% endblock %}
                {% block body %}
                <p id="text">{{ text }}</p>
                <a id="link" href="{{ url_for('item', item_id=7, sort='new') }}">item</a>
                <form method="post" action="{{ url_for('post') }}">{{ csrf_field() }}
                <button>Send</button></form>
                {% endblock %}
            """,
            "note.txt": "Dear {{ name }},\n",
            "feed.xml": "<feed><title>{{ title }}</title></feed>\n",
            "user.html": """
                {% if current_user and current_user.is_authenticated %}
                <p id="user">signed in as {{ current_user.email }}</p>
                {% else %}<p id="user">anonymous</p>{% endif %}
            """,
            "token.html": "{{ csrf_token() }}|{{ csrf_token() }}",
            "broken.html": """
                <!doctype html>
                <p>fine so far</p>
                <p>{{ order.customer.name }}</p>
            """,
            "syntax.html": "<p>\n{% if %}\n</p>\n",
        },
    )


@pytest.fixture
def app(folder: Path) -> App:
    app = App(secret_key=SECRET)
    CookieSessions(app)
    Csrf(app)
    Templates(app, folder)

    @app.get("/page")
    def page(request):
        return render(request, "page.html", title="Fish & chips", text="<script>alert(1)</script>")

    @app.get("/items/<int:item_id>")
    def item(request, item_id):
        return {"item": item_id}

    @app.post("/post")
    def post(request):
        flash(request, "Saved <b>it</b>.", "success")
        return redirect("/page", 303)

    @app.get("/render/<name>")
    def any_template(request, name):
        return render(request, name, status=201, headers={"X-Shown": "yes"}, title="A & B")

    return app


def test_values_are_escaped_in_html_and_xml_but_not_in_text(client: TestClient) -> None:
    page = client.get("/page")

    assert page.content_type == "text/html"
    assert page.charset == "utf-8"
    assert "<title>Fish &amp; chips</title>" in page.text
    assert '<p id="text">&lt;script&gt;alert(1)&lt;/script&gt;</p>' in page.text
    assert "<script>" not in page.text
    feed = client.get("/render/feed.xml", status=201)
    assert feed.content_type == "application/xml"
    assert "<title>A &amp; B</title>" in feed.text
    note = client.get("/render/note.txt", status=201)
    assert note.content_type == "text/plain"
    assert note.headers["X-Shown"] == "yes"


def test_url_for_builds_the_routes_paths(client: TestClient) -> None:
    page = client.get("/page")

    assert '<a id="link" href="/items/7?sort=new">' in page.text
    assert 'action="/post"' in page.text


def test_the_csrf_field_lets_the_form_post_and_its_absence_is_refused(client: TestClient) -> None:
    page = client.get("/page")

    client.post("/post", {"csrf_token": "forged"}, status=403)
    answer = client.post("/post", {"csrf_token": token_of(page.text)}, status=303)
    assert answer.headers["Location"].endswith("/page")


def test_csrf_token_gives_a_fresh_mask_each_call(client: TestClient) -> None:
    first, second = client.get("/render/token.html", status=201).text.split("|")

    assert first != second
    client.post("/post", {"csrf_token": second}, status=303)


def test_a_flashed_message_is_shown_once_on_the_next_page(client: TestClient) -> None:
    page = client.get("/page")
    client.post("/post", {"csrf_token": token_of(page.text)}, status=303)

    shown = client.get("/page")
    again = client.get("/page")

    assert '<p class="success">Saved &lt;b&gt;it&lt;/b&gt;.</p>' in shown.text
    assert "Saved" not in again.text


def test_the_current_user_is_the_requests_user(tmp_path: Path, folder: Path) -> None:
    app = App(secret_key=SECRET)
    db = Database(app, f"sqlite:///{tmp_path / 'users.db'}")
    auth = Auth(app, db, password_rounds=10)
    Templates(app, folder)
    db.create_tables()
    ada = auth.create_user("ada@example.org", "correct horse battery")

    @app.get("/user")
    def user(request):
        return render(request, "user.html")

    client = TestClient(app)
    assert '<p id="user">anonymous</p>' in client.get("/user").text
    client.log_in(ada)
    assert '<p id="user">signed in as ada@example.org</p>' in client.get("/user").text


def test_without_auth_current_user_is_undefined_and_no_session_is_loaded(folder: Path) -> None:
    app = App(secret_key=SECRET)
    CookieSessions(app)
    Templates(app, folder)

    @app.get("/user")
    def user(request):
        return render(request, "user.html")

    answer = TestClient(app).get("/user")
    assert '<p id="user">anonymous</p>' in answer.text
    assert "Set-Cookie" not in answer.headers


def test_a_template_error_names_the_file_and_line_in_the_log_not_to_the_client(
    client: TestClient, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="microback.app"):
        answer = client.get("/render/broken.html", status=500)

    assert "broken.html" not in answer.text
    assert "customer" not in answer.text
    logged = "\n".join(record.exc_text or "" for record in caplog.records)
    assert f'File "{folder / "broken.html"}", line 3' in logged
    assert "'order' is undefined" in logged


def test_a_syntax_error_names_the_file_and_line(
    client: TestClient, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="microback.app"):
        answer = client.get("/render/syntax.html", status=500)

    assert "syntax.html" not in answer.text
    logged = "\n".join(record.exc_text or "" for record in caplog.records)
    assert f'File "{folder / "syntax.html"}", line 2' in logged


def test_a_missing_template_is_named_with_the_folder_searched(
    client: TestClient, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="microback.app"):
        client.get("/render/absent.html", status=500)

    logged = "\n".join(record.exc_text or "" for record in caplog.records)
    assert "TemplateNotFound: 'absent.html' not found in search path" in logged
    assert str(folder) in logged


def logged_error(app: App, caplog: pytest.LogCaptureFixture) -> str:
    with caplog.at_level(logging.ERROR, logger="microback.app"):
        TestClient(app).get("/", status=500)
    return "\n".join(record.exc_text or "" for record in caplog.records)


def test_render_without_templates_says_what_to_create(caplog: pytest.LogCaptureFixture) -> None:
    app = App(secret_key=SECRET)

    @app.get("/")
    def home(request):
        return render(request, "page.html")

    assert "render() needs the app's templates: create Templates(app)" in logged_error(app, caplog)


def test_csrf_field_without_csrf_says_what_to_create(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = App(secret_key=SECRET)
    CookieSessions(app)
    Templates(app, folder)

    @app.get("/")
    def home(request):
        return render(request, "token.html")

    assert "create Csrf(app)" in logged_error(app, caplog)


def test_a_relative_folder_is_found_beside_the_module_from_any_directory(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project / "templates", {"hello.html": "<p>hello {{ name }}</p>\n"})
    write(
        project,
        {
            "site_app.py": """
                from microback import App, Templates, render

                app = App(secret_key="s" * 40)
                Templates(app)

                @app.get("/")
                def home(request):
                    return render(request, "hello.html", name="<you>")
            """
        },
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        f"import sys; sys.path.insert(0, {str(project)!r})\n"
        "from site_app import app\n"
        "from microback.testing import TestClient\n"
        "print(TestClient(app).get('/').text)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "<p>hello &lt;you&gt;</p>" in result.stdout


def test_a_missing_folder_is_named_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere"))):
        Templates(App(secret_key=SECRET), tmp_path / "nowhere")


def test_auto_reload_rereads_a_changed_template(tmp_path: Path) -> None:
    folder = write(tmp_path / "templates", {"live.html": "first\n"})
    for reload_, expected in ((True, "second\n"), (False, "first\n")):
        app = App(secret_key=SECRET)
        Templates(app, folder, auto_reload=reload_)

        @app.get("/")
        def live(request):
            return render(request, "live.html")

        client = TestClient(app)
        (folder / "live.html").write_text("first\n")
        assert client.get("/").text == "first\n"
        (folder / "live.html").write_text("second\n")
        later = os.stat(folder / "live.html").st_mtime + 10  # past any timestamp granularity
        os.utime(folder / "live.html", (later, later))
        assert client.get("/").text == expected


def test_importing_microback_imports_neither_jinja2_nor_whitenoise() -> None:
    code = (
        "import sys, microback\n"
        "from microback import App, flash\n"
        "print(sorted(m for m in ('jinja2', 'whitenoise') if m in sys.modules))\n"
        "microback.Templates, microback.Static\n"
        "print(sorted(m for m in ('jinja2', 'whitenoise') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "['jinja2', 'whitenoise']"]
