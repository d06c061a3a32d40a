"""The ``microback`` command: ``serve`` an app with the gevent server, list its ``routes``,
``check --deploy`` its settings, open a ``shell`` on it, write a ``new`` project.

This is the one layer that knows both the framework and the server: the server package serves
any WSGI callable, and only here is a :class:`~microback.settings.SettingsError` raised by the
user's ``App(...)`` recognised and reported as such.

Start-up problems are reported as one line, ``microback: error: ...``, never a traceback:
exit status 2 for a target that cannot be loaded, 1 for an address that cannot be listened on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from .command import DEFAULT_HOST as DEFAULT_HOST
from .command import DEFAULT_PORT as DEFAULT_PORT
from .command import EXIT_LISTEN as EXIT_LISTEN
from .command import EXIT_USAGE as EXIT_USAGE
from .command import SECRET_KEY_VARIABLE as SECRET_KEY_VARIABLE
from .command import CommandError as CommandError
from .command import generated_key_warning as generated_key_warning
from .command import load as load
from .redact import DEFAULT_SECRET_WORDS, Masker
from .settings import parse_size
from .shell_command import add_shell_command

if TYPE_CHECKING:
    from .server.listener import Address

PROG = "microback"
_TARGET_HELP = (
    "the app to run: 'module:name', 'path/to/file.py:name', or 'module' for 'module:app'"
)


def main(argv: list[str] | None = None) -> int:
    """Run the ``microback`` command with *argv* (default ``sys.argv[1:]``); return its status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status: int = args.run(args)
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130  # Ctrl-C before the server took over the signal: exit as a shell expects
    return status


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for ``microback`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run and inspect microback (or any WSGI) applications."
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve an app with the gevent server",
        description="Serve a WSGI app with the gevent server until SIGTERM or Ctrl-C, "
        "then stop gracefully; with --workers, in worker processes under a master that "
        "SIGHUP reloads.",
    )
    serve.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    serve.add_argument("--host", help=f"address to listen on ({DEFAULT_HOST})")
    serve.add_argument(
        "--port", type=_port, help=f"port to listen on, 0 for any free ({DEFAULT_PORT})"
    )
    serve.add_argument(
        "-b",
        "--bind",
        action="append",
        type=_bind_option,
        default=[],
        metavar="ADDRESS",
        help="also listen on HOST:PORT, [IPv6]:PORT or unix:PATH; repeatable; with --bind, "
        "--host/--port are used only when given",
    )
    serve.add_argument(
        "-w",
        "--workers",
        type=_workers,
        metavar="N",
        help="run a master and N worker processes ('auto': one per CPU); without it, one "
        "process serves alone",
    )
    serve.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="with workers: kill and replace a worker whose event loop is blocked this long "
        "(%(default)g)",
    )
    serve.add_argument(
        "--reload",
        action="store_true",
        help="development: reload the workers when a .py file under the app's directory changes",
    )
    serve.add_argument("--certfile", metavar="PATH", help="serve HTTPS with this PEM certificate")
    serve.add_argument(
        "--keyfile", metavar="PATH", help="the certificate's PEM private key (unencrypted)"
    )
    serve.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="lowest level logged to stderr; access lines are info (%(default)s)",
    )
    from .server.config import ServerConfig

    # Defaults are not repeated here: they are ServerConfig's and Limits', shown in the help.
    default = ServerConfig()
    serve.add_argument(
        "--graceful-timeout",
        type=_seconds,
        default=default.graceful_timeout,
        metavar="SECONDS",
        help="on stop, how long requests in flight may take to finish (%(default)g)",
    )
    serve.add_argument(
        "--blocked-loop-threshold",
        type=_seconds,
        default=default.blocked_loop_threshold,
        metavar="SECONDS",
        help="warn, with the request and the stack, when a handler holds the event loop this "
        "long (%(default)g; 0 turns the check off)",
    )
    serve.add_argument(
        "--slow-request-threshold",
        type=_seconds,
        default=default.slow_request_threshold,
        metavar="SECONDS",
        help="warn about a request that takes this long, with its time in the app, in the "
        "database and waiting for a pool connection (%(default)g; 0 turns it off)",
    )
    serve.add_argument(
        "--drain-delay",
        type=_seconds,
        default=default.drain_delay,
        metavar="SECONDS",
        help="on stop, how long to go on accepting while readiness answers 503, so a load "
        "balancer stops sending first (%(default)g)",
    )
    # Two caps (see microback/server/server.py): open connections are cheap, and many may
    # be slow clients still sending their heads; requests in the app are what costs.
    serve.add_argument(
        "--connections",
        type=_positive,
        default=default.connections,
        metavar="N",
        help="most open connections per process, idle or slow ones included; more wait to be "
        "accepted; lowered to fit the open file limit (%(default)s)",
    )
    serve.add_argument(
        "--max-concurrent-requests",
        type=_positive,
        default=default.max_concurrent_requests,
        metavar="N",
        help="most requests inside the app at once per process; more wait for a slot "
        "(%(default)s)",
    )
    serve.add_argument(
        "--access-log-format",
        choices=("text", "json"),
        default="text",
        help="access lines as text or as one JSON object each (%(default)s)",
    )
    serve.add_argument(
        "--secret-params",
        type=_secret_params,
        default=DEFAULT_SECRET_WORDS,
        metavar="WORDS",
        help="comma-separated words; query values whose parameter names end in one of them "
        f"(access_token, apiKey) are logged as *** ({','.join(DEFAULT_SECRET_WORDS)}); "
        "'' masks none",
    )
    _add_limits(serve)
    serve.set_defaults(run=run_serve)

    routes = commands.add_parser(
        "routes",
        help="list an app's routes",
        description="Print the route table: methods, path and endpoint, one route a line.",
    )
    routes.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    routes.set_defaults(run=run_routes)

    check = commands.add_parser(
        "check",
        help="list what is unsafe about deploying an app",
        description="Load the app as 'serve' would, with this environment, and print each "
        "setting that is unsafe for production; exit 1 if there is any.",
    )
    check.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    check.add_argument(
        "--deploy", action="store_true", required=True, help="run the deployment checks"
    )
    check.set_defaults(run=run_check)

    openapi = commands.add_parser(
        "openapi",
        help="print an app's OpenAPI 3.1 document",
        description="Print the OpenAPI 3.1 document of the app's routes as JSON (with "
        "--yaml, as YAML: needs PyYAML). The title and version are those given to "
        "enable_openapi(), unless given here.",
    )
    openapi.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    openapi.add_argument("--title", help="the API's title (info.title)")
    openapi.add_argument("--version", dest="api_version", help="the API's version (info.version)")
    openapi.add_argument("--yaml", action="store_true", help="print YAML instead of JSON")
    openapi.set_defaults(run=run_openapi)

    add_shell_command(commands, _TARGET_HELP)

    new = commands.add_parser(
        "new",
        help="write a new project: an app, its tests, migrations and README",
        description="Write the folder NAME: a project that runs and passes its own tests "
        "at once (an app package with models, HTML pages and a JSON API, migrations, tests, "
        "README.md, .env.example, pyproject.toml).",
    )
    new.add_argument(
        "name", metavar="NAME", help="the project's folder and Python package (e.g. tasks)"
    )
    new.add_argument(
        "--api-only", action="store_true", help="a JSON API only: no templates or static files"
    )
    new.add_argument(
        "--postgresql",
        action="store_true",
        help="PostgreSQL as the database, and for the tests, instead of SQLite",
    )
    new.set_defaults(run=run_new)

    # microback.db imports peewee, which serve must not import before gevent patches: every
    # argument after "db" goes through untouched, and microback.db.cli is imported on use.
    database = commands.add_parser(
        "db",
        help="create and migrate an app's database (microback db --help)",
        add_help=False,
        prefix_chars="\0",
    )
    database.add_argument("args", nargs=argparse.REMAINDER)
    database.set_defaults(run=run_db)

    # The same for the job commands (microback.jobs imports peewee and huey).
    for name, run, text in (
        ("worker", run_worker, "run an app's background jobs (microback worker --help)"),
        ("jobs", run_jobs, "list, retry or purge an app's jobs (microback jobs --help)"),
    ):
        command = commands.add_parser(name, help=text, add_help=False, prefix_chars="\0")
        command.add_argument("args", nargs=argparse.REMAINDER)
        command.set_defaults(run=run)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    """Patch with gevent, then serve the target (microback/serve_command.py)."""
    # Before anything imports the user's module: peewee and database drivers create their
    # threading.local state and pick their wait functions when imported, and must see gevent's.
    from gevent import monkey

    monkey.patch_all()

    from .serve_command import run_serve as serve

    return serve(args)


def _add_limits(serve: argparse.ArgumentParser) -> None:
    # Defaults are not repeated here: they are Limits' own, shown in the help.
    from .server.limits import Limits

    default = Limits()
    limits = serve.add_argument_group(
        "limits", "per request; each refused with its status, then the connection is closed"
    )
    limits.add_argument(
        "--max-request-line",
        type=_size,
        default=default.max_request_line,
        metavar="BYTES",
        help="longest request target (path and query), else 414 (%(default)s)",
    )
    limits.add_argument(
        "--max-header-count",
        type=_positive,
        default=default.max_header_count,
        metavar="N",
        help="most header fields in a request, else 431 (%(default)s)",
    )
    limits.add_argument(
        "--max-header-size",
        type=_size,
        default=default.max_header_size,
        metavar="BYTES",
        help="most bytes of header names and values together, else 431 (%(default)s)",
    )
    limits.add_argument(
        "--max-body-size",
        type=_size_or_zero,
        default=default.max_body_size or 0,
        metavar="BYTES",
        help="largest request body, else 413 before it is read; 0 for no limit; "
        "suffixes k, M, G (%(default)s)",
    )
    limits.add_argument(
        "--header-timeout",
        type=_positive_seconds,
        default=default.header_timeout,
        metavar="SECONDS",
        help="time to send a request's head from its first byte, else 408 (%(default)g)",
    )
    limits.add_argument(
        "--body-timeout",
        type=_positive_seconds,
        default=default.body_timeout,
        metavar="SECONDS",
        help="longest silence while reading a body (408) or sending a response (%(default)g)",
    )
    limits.add_argument(
        "--keepalive-timeout",
        type=_positive_seconds,
        default=default.keepalive_timeout,
        metavar="SECONDS",
        help="how long an idle keep-alive connection stays open (%(default)g)",
    )
    limits.add_argument(
        "--min-body-rate",
        type=_size_or_zero,
        default=default.min_body_rate,
        metavar="BYTES",
        help="bytes per second a request body must average after the grace period, else "
        "408; 0 for no minimum (%(default)s)",
    )
    limits.add_argument(
        "--body-rate-grace",
        type=_positive_seconds,
        default=default.body_rate_grace,
        metavar="SECONDS",
        help="seconds of waiting for a body before --min-body-rate applies (%(default)g)",
    )


def run_routes(args: argparse.Namespace) -> int:
    """Print the target's route table as aligned columns."""
    app = load(args.target)
    routes = getattr(app, "routes", None)
    if routes is None:
        raise CommandError(
            f"{args.target!r} is a WSGI application without a route table; "
            "'microback routes' lists the routes of a microback App"
        )
    try:
        rows = [(",".join(sorted(r.methods)), str(r.path), str(r.endpoint)) for r in routes]
    except (AttributeError, TypeError) as exc:
        raise CommandError(
            f"{args.target!r} has a 'routes' attribute that is not a microback route table"
        ) from exc
    if not rows:
        print(f"{PROG}: {args.target!r} has no routes", file=sys.stderr)
        return 0
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for methods, path, endpoint in rows:
        print(f"{methods:<{widths[0]}}  {path:<{widths[1]}}  {endpoint}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Print the target's deployment findings, ``setting: message`` a line; 1 if any."""
    from .app import App
    from .security.deploy import deployment_findings

    app = load(args.target)
    if not isinstance(app, App):
        raise CommandError(
            f"{args.target!r} is not a microback App; 'microback check --deploy' reads an "
            "App's settings: point TARGET at the App, not at middleware around it"
        )
    findings = deployment_findings(app)
    if "microback.db" in sys.modules:  # the app has a database: are its migrations applied?
        from .db.cli import deploy_findings
        from .security.deploy import Finding

        findings += [Finding(*pair) for pair in deploy_findings(app, args.target)]
    for finding in findings:  # messages name settings, never their values: no secret shown
        print(f"{finding.setting}: {finding.message}")
    if not findings:
        print("no problems found")
    return 1 if findings else 0


def run_openapi(args: argparse.Namespace) -> int:
    """Print the target's OpenAPI document, as JSON or YAML."""
    from .app import App
    from .openapi import openapi_document

    if args.yaml:
        try:
            import yaml
        except ImportError:
            raise CommandError("--yaml needs PyYAML: pip install pyyaml") from None
    app = load(args.target)
    if not isinstance(app, App):
        raise CommandError(
            f"{args.target!r} is not a microback App; 'microback openapi' reads an App's "
            "routes: point TARGET at the App, not at middleware around it"
        )
    served = app.extensions.get("openapi")
    document = openapi_document(
        app,
        title=args.title or getattr(served, "title", "API"),
        version=args.api_version or getattr(served, "version", "0.1.0"),
        description=getattr(served, "description", None),
    )
    if args.yaml:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return 0


def run_new(args: argparse.Namespace) -> int:
    """Write a new project (microback/new_project.py)."""
    from .new_project import run_new as new

    return new(args.name, api_only=args.api_only, postgresql=args.postgresql)


def run_db(args: argparse.Namespace) -> int:
    """Run ``microback db ...`` (new, migrate, rollback, status, create-tables)."""
    from .db.cli import main as db_main

    status: int = db_main(args.args, load)
    return status


def run_worker(args: argparse.Namespace) -> int:
    """Patch with gevent, then run ``microback worker ...`` (see microback/jobs/cli.py)."""
    from gevent import monkey

    monkey.patch_all()  # before peewee and the drivers are imported, as for serve

    from .jobs.cli import worker_main

    return worker_main(args.args, load)


def run_jobs(args: argparse.Namespace) -> int:
    """Run ``microback jobs list|retry|purge ...``."""
    from .jobs.cli import jobs_main

    return jobs_main(args.args, load)


def _bind_option(text: str) -> Address:
    from .server.listener import parse_bind

    try:
        return parse_bind(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _workers(text: str) -> int:
    if text == "auto":
        # The CPUs this process may run on (taskset, a container's cpuset), not the host's.
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    return _positive(text)


def _secret_params(text: str) -> tuple[str, ...]:
    try:
        return Masker(text.split(",")).words
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    port = _integer(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 0 to 65535, not {port}")
    return port


def _positive(text: str) -> int:
    number = _integer(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _size_or_zero(text: str) -> int:
    # The settings' grammar (16M, 16MiB, 512k), so a size reads the same in both places.
    try:
        return parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size in bytes (a whole number, optionally with k, M or G)"
        ) from None


def _size(text: str) -> int:
    size = _size_or_zero(text)
    if size < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return size


def _positive_seconds(text: str) -> float:
    seconds = _seconds(text)
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return seconds


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return seconds
