"""``microback serve`` as a user runs it: a real process on a loopback port."""

from __future__ import annotations

import http.client
import re
import signal
from pathlib import Path

import requests
from serving import StartServer, free_port, write_module


def test_serves_the_app_and_logs_one_access_line_per_request(
    start_server: StartServer, webapp: Path
) -> None:
    server = start_server("webapp:app")

    response = requests.get(
        server.url + "/?page=2",
        headers={"Authorization": "Bearer top-secret-token", "Cookie": "session=cookie-secret"},
        timeout=10,
    )
    posted = requests.post(server.url + "/echo", data=b"body-secret-password", timeout=10)

    assert response.status_code == 200
    assert response.json() == {"hello": "world"}
    assert posted.json() == {"received": 20}
    line = server.wait_for_line(r"microback\.access: .*GET /\?page=2").string
    request_id = response.headers["X-Request-ID"]
    assert re.search(
        rf'127\.0\.0\.1 "GET /\?page=2 HTTP/1\.1" 200 17 \d+\.\dms {re.escape(request_id)}$', line
    ), line
    server.wait_for_line(r'"POST /echo HTTP/1\.1" 200 \d+ ')
    for secret in ("top-secret-token", "cookie-secret", "body-secret-password"):
        assert secret not in server.log


def test_listening_line_names_the_url(start_server: StartServer, webapp: Path) -> None:
    server = start_server("webapp:app")

    assert f"microback.server: listening on http://127.0.0.1:{server.port}" in server.log


def test_user_module_is_imported_after_gevent_patching(
    start_server: StartServer, webapp: Path
) -> None:
    server = start_server("webapp:app")

    state = requests.get(server.url + "/import-state", timeout=10).json()

    assert state == {
        "socket": True,
        "threading_local": state["threading_local"],
        "peewee_state_is_greenlet_local": True,
    }
    assert state["threading_local"].startswith("gevent"), state


def test_module_alone_serves_its_app_attribute(start_server: StartServer, webapp: Path) -> None:
    server = start_server("webapp")

    assert requests.get(server.url + "/", timeout=10).json() == {"hello": "world"}


def test_file_target_is_loaded_by_path_with_its_directory_importable(
    start_server: StartServer, tmp_path: Path
) -> None:
    # The app imports a sibling module, which works only if the file's directory is on sys.path.
    write_module(tmp_path / "project", "greeting.py", "WORDS = 'hi from a sibling module'\n")
    write_module(
        tmp_path / "project",
        "service.py",
        """
        from greeting import WORDS

        def application(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [WORDS.encode()]
        """,
    )

    server = start_server("project/service.py:application")

    assert requests.get(server.url + "/", timeout=10).text == "hi from a sibling module"


def test_serves_any_wsgi_callable_with_keep_alive(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(
        tmp_path,
        "bare.py",
        """
        def app(environ, start_response):
            body = environ["PATH_INFO"].encode()
            start_response("200 OK", [("Content-Type", "text/plain"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        """,
    )
    server = start_server("bare:app")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)

    bodies = []
    try:
        for path in ("/one", "/two", "/three"):
            connection.request("GET", path)
            response = connection.getresponse()
            bodies.append(response.read())
            assert response.getheader("Connection") != "close"
    finally:
        connection.close()

    assert bodies == [b"/one", b"/two", b"/three"]


def test_app_exception_is_a_500_logged_with_traceback_but_no_headers(
    start_server: StartServer, tmp_path: Path
) -> None:
    write_module(
        tmp_path,
        "crash.py",
        """
        def app(environ, start_response):
            raise RuntimeError("kaboom from the app")
        """,
    )
    server = start_server("crash:app")

    response = requests.get(
        server.url + "/", headers={"Cookie": "session=cookie-secret"}, timeout=10
    )

    assert response.status_code == 500
    assert "kaboom" not in response.text
    server.wait_for_line(r'"GET / HTTP/1\.1" 500')
    assert "RuntimeError: kaboom from the app" in server.log
    assert "cookie-secret" not in server.log


def test_log_level_warning_silences_access_lines(start_server: StartServer, webapp: Path) -> None:
    server = start_server("webapp:app", "--log-level", "warning", port=free_port())

    assert requests.get(server.url + "/", timeout=10).status_code == 200
    server.send_signal(signal.SIGTERM)

    assert server.wait() == 0
    assert not any("microback.access" in line for line in server.lines)


def test_environ_passes_the_wsgi_validator(start_server: StartServer, tmp_path: Path) -> None:
    # wsgiref's validator raises (so the server answers 500) on any PEP 3333 violation in the
    # environ or in how the server calls the app; its warnings are made errors here too.
    write_module(
        tmp_path,
        "validated.py",
        """
        import warnings
        from wsgiref.validate import validator

        warnings.simplefilter("error")


        def plain(environ, start_response):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            start_response("200 OK", [("Content-Type", "text/plain"),
                                      ("Content-Length", str(len(body) + 2))])
            return [b"ok", body]


        app = validator(plain)
        """,
    )
    server = start_server("validated:app")

    got = requests.get(server.url + "/path?q=1", timeout=10)
    posted = requests.post(server.url + "/", data=b"payload", timeout=10)

    assert (got.status_code, got.text) == (200, "ok")
    assert (posted.status_code, posted.text) == (200, "okpayload")
