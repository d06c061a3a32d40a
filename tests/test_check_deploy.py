"""``microback check --deploy TARGET``: one line per unsafe setting, exit 1; else 0.

Run as a user runs it, in a subprocess with only the environment each test gives, since the
environment is part of what is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOOD_SECRET = "k3J9x-VQ2m8_Lr5tY7wZ0aB4cD6eF1gH2iJ3kL4mN5o"
PRODUCTION = {"MICROBACK_SECRET_KEY": GOOD_SECRET, "MICROBACK_ALLOWED_HOSTS": "example.com"}

PLAIN_APP = """
    from microback import App

    app = App()
"""


def check(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``microback check ARGS`` in ``tmp_path`` with no MICROBACK_* variables but ``env``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MICROBACK_") and k != "DATABASE_URL"
    }
    return subprocess.run(
        [sys.executable, "-m", "microback", "check", *args],
        cwd=tmp_path,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(directory: Path, name: str, source: str) -> None:
    (directory / name).write_text(textwrap.dedent(source).lstrip())


def settings_named(stdout: str) -> list[str]:
    return [line.split(":", 1)[0] for line in stdout.splitlines()]


def test_a_default_app_is_not_ready(tmp_path: Path) -> None:
    write(tmp_path, "shop.py", PLAIN_APP)
    done = check(tmp_path, "--deploy", "shop:app", env={"MICROBACK_DEBUG": "1"})
    assert done.returncode == 1
    assert settings_named(done.stdout) == ["debug", "secret_key", "allowed_hosts"]
    assert "debug: debug is on: 500 responses show tracebacks; turn it off" in done.stdout


def test_the_same_app_configured_by_its_environment_passes(tmp_path: Path) -> None:
    write(tmp_path, "shop.py", PLAIN_APP)
    done = check(tmp_path, "--deploy", "shop:app", env=PRODUCTION)
    assert (done.returncode, done.stdout, done.stderr) == (0, "no problems found\n", "")


def test_each_weak_choice_is_named_and_the_secret_is_never_shown(tmp_path: Path) -> None:
    write(
        tmp_path,
        "weak.py",
        """
        from microback import App
        from microback.security import CookieSessions

        app = App(secret_key="changeme", allowed_hosts=["*"], hsts_seconds=0, frame_options="")
        CookieSessions(app, secure=False)
        """,
    )
    done = check(tmp_path, "--deploy", "weak.py:app")
    assert done.returncode == 1
    assert sorted(settings_named(done.stdout)) == [
        "allowed_hosts",
        "frame_options",
        "hsts_seconds",
        "secret_key",
        "sessions.secure",
    ]
    assert "changeme" not in done.stdout + done.stderr


def test_a_short_secret_from_the_environment_is_weak_and_not_shown(tmp_path: Path) -> None:
    write(tmp_path, "shop.py", PLAIN_APP)
    short = "s3cr3t-but-only-24-chars"
    env = {**PRODUCTION, "MICROBACK_SECRET_KEY": short}
    done = check(tmp_path, "--deploy", "shop:app", env=env)
    assert done.returncode == 1
    assert settings_named(done.stdout) == ["secret_key"]
    assert "at least 32 random characters" in done.stdout
    assert short not in done.stdout + done.stderr


def test_the_accounts_example_is_deployable_when_configured(tmp_path: Path) -> None:
    env = {**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path / 'accounts.db'}"}
    target = f"{REPO / 'examples/accounts/app.py'}:app"
    done = check(tmp_path, "--deploy", target, env=env)
    # Without its TLS proxy's address the session cookie's Secure flag cannot be trusted.
    assert (done.returncode, settings_named(done.stdout)) == (1, ["sessions.secure"])
    env["MICROBACK_TRUSTED_PROXIES"] = "127.0.0.1"
    done = check(tmp_path, "--deploy", target, env=env)
    assert (done.returncode, done.stdout) == (0, "no problems found\n"), done.stderr


def test_a_wsgi_app_that_is_not_a_microback_app_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "plain.py",
        """
        def app(environ, start_response):
            start_response("200 OK", [])
            return [b""]
        """,
    )
    done = check(tmp_path, "--deploy", "plain:app", env=PRODUCTION)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("microback: error: 'plain:app' is not a microback App")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--deploy", "missing:app"), "microback: error: "),
        (("shop:app",), "the following arguments are required: --deploy"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], error: str) -> None:
    write(tmp_path, "shop.py", PLAIN_APP)
    done = check(tmp_path, *args, env=PRODUCTION)
    assert done.returncode == 2 and done.stdout == ""
    assert error in done.stderr
