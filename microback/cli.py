"""The ``microback`` command: ``serve`` an app with the gevent server, list its ``routes``,
``check --deploy`` its settings.

This is the one layer that knows both the framework and the server: the server package serves
any WSGI callable, and only here is a :class:`~microback.settings.SettingsError` raised by the
user's ``App(...)`` recognised and reported as such.

Start-up problems are reported as one line, ``microback: error: ...``, never a traceback:
exit status 2 for a target that cannot be loaded, 1 for an address that cannot be listened on.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import shutil
import sys
from functools import partial
from typing import TYPE_CHECKING

from .redact import DEFAULT_SECRET_WORDS, Masker
from .settings import SHARED_SECRET_VARIABLE, SettingsError, parse_size

if TYPE_CHECKING:
    import socket
    import ssl

    from _typeshed.wsgi import WSGIApplication

    from .server.config import ServerConfig
    from .server.listener import Address

PROG = "microback"
EXIT_LISTEN = 1
EXIT_USAGE = 2
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

_TARGET_HELP = (
    "the app to run: 'module:name', 'path/to/file.py:name', or 'module' for 'module:app'"
)


class CommandError(Exception):
    """A problem to report as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


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
    """Patch with gevent, then serve the target: in this process, or with a master and workers.

    Without ``--workers`` or ``--reload`` this process imports the app and serves it. With
    them it becomes the master: it binds the sockets and forks the workers, and each worker
    imports the app (see microback/server/worker.py for why the master does not).
    """
    # Before anything imports the user's module: peewee and database drivers create their
    # threading.local state and pick their wait functions when imported, and must see gevent's.
    from gevent import monkey

    monkey.patch_all()

    from .server import configure_logging

    configure_logging(args.log_level, args.access_log_format, secret_params=args.secret_params)
    # Before the app imports prometheus-client, which picks its mode when imported.
    from .metrics import prepare_multiprocess_directory

    metrics_directory = prepare_multiprocess_directory()
    try:
        return _serve(args)
    finally:
        if metrics_directory is not None:  # the workers are gone: nothing reads it any more
            shutil.rmtree(metrics_directory, ignore_errors=True)


def _serve(args: argparse.Namespace) -> int:
    from .server import Limits, Server
    from .server.config import ServerConfig
    from .server.fdlimit import fit_connections

    limits = Limits(
        max_request_line=args.max_request_line,
        max_header_count=args.max_header_count,
        max_header_size=args.max_header_size,
        max_body_size=args.max_body_size or None,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keepalive_timeout=args.keepalive_timeout,
        min_body_rate=args.min_body_rate,
        body_rate_grace=args.body_rate_grace,
    )
    config = ServerConfig(
        # Once, here, for a single process and for a master alike: workers inherit the limit.
        connections=fit_connections(args.connections),
        max_concurrent_requests=args.max_concurrent_requests,
        graceful_timeout=args.graceful_timeout,
        drain_delay=args.drain_delay,
        blocked_loop_threshold=args.blocked_loop_threshold or None,
        limits=limits,
        ssl_context=_ssl_context(args),
    )
    addresses = _addresses(args)
    if args.workers is not None or args.reload:
        return _run_master(args, addresses, config)
    app = load(args.target)
    _start(app, args.target)
    uses = _key_uses_to_warn_about(app)
    if uses:
        _warn_generated_key(", ".join(uses), "made at start-up")
    unapplied = _unapplied_migrations(app, args.target)
    if unapplied:
        logging.getLogger("microback").warning("%s", unapplied)
    sockets = _bind(addresses)
    try:
        Server(app, listeners=sockets, config=config).serve_forever()
        _stop(app)
    finally:
        _remove_unix_sockets(addresses)
    return 0


def _run_master(
    args: argparse.Namespace,
    addresses: list[Address],
    config: ServerConfig,
) -> int:
    from .metrics import mark_process_dead
    from .server.master import BootError, Master
    from .server.reload import SourceWatcher
    from .server.target import TargetError, source_directory
    from .server.worker import WorkerConfig

    watcher = None
    if args.reload:
        try:
            watcher = SourceWatcher(source_directory(args.target))
        except TargetError as exc:
            raise CommandError(str(exc)) from exc
    sockets = _bind(addresses)
    _share_secret_key()
    # A worker writes here what to warn about at start-up (what its app signs with the
    # generated key, migrations not applied); the master says each once, when all are
    # serving, instead of once per worker and per reload.
    warnings_r, warnings_w = os.pipe()
    os.set_blocking(warnings_r, False)
    os.set_blocking(warnings_w, False)
    worker_config = WorkerConfig(
        load=partial(_load_in_worker, args.target, warnings_w),
        listeners=tuple(sockets),
        server=config,
        timeout=args.timeout,
        stopped=_stop,
    )
    master = Master(
        worker_config,
        args.workers or 1,
        watcher=watcher,
        on_ready=partial(_warn_once_for_workers, warnings_r),
        on_exit=mark_process_dead,
    )
    try:
        master.run()
    except BootError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        os.close(warnings_r)
        os.close(warnings_w)
        _remove_unix_sockets(addresses)
    return 0


SECRET_KEY_VARIABLE = "MICROBACK_SECRET_KEY"  # noqa: S105 (a variable's name, not a key)


def _share_secret_key() -> None:
    """Give all workers one generated secret key when none is configured.

    Each worker imports the app, and an ``App`` without a key makes a random one: with one
    per worker, a session signed by one worker would be refused by the next. Put in the
    environment before any worker starts, the key is the same for all of them and for those
    a reload starts, for as long as the master runs. It is only a fallback
    (``SHARED_SECRET_VARIABLE``): an ``App(secret_key=...)`` still uses its own key.
    """
    if SECRET_KEY_VARIABLE not in os.environ:
        os.environ[SHARED_SECRET_VARIABLE] = secrets.token_urlsafe(32)


def _key_uses_to_warn_about(app: object) -> list[str]:
    """What *app* signs with a secret key made at start-up: warned about when serving it.

    Only an app that signs (session cookies, one-time links: whatever called
    ``App.secret_key_for``) with a generated key is warned, and only by ``serve``: ``routes``,
    ``db`` and ``check`` say nothing (``check --deploy`` reports a missing key as a finding).
    """
    from .app import App

    if isinstance(app, App) and app.settings.secret_key_generated:
        return list(app.secret_key_uses)
    return []


def generated_key_warning(uses: str, made: str) -> str:
    """The warning for an app that signs *uses* with a random key *made* ("made at start-up")."""
    return (
        f"No secret key set ({SECRET_KEY_VARIABLE}): {uses} are signed with a random key "
        f"{made}; they will not survive a restart."
    )


def _warn_generated_key(uses: str, made: str) -> None:
    logging.getLogger("microback").warning("%s", generated_key_warning(uses, made))


def _unapplied_migrations(app: object, target: str) -> str | None:
    """The one-line warning about migrations the app's database lacks, or None.

    Raises :class:`CommandError` instead when the app's ``require_migrations`` is on.
    """
    if "microback.db" not in sys.modules:  # the app has no database; and no peewee import
        return None
    import peewee

    from .app import App
    from .db.cli import pending_migrations, unapplied_message

    try:
        names = pending_migrations(app, target)
    except peewee.PeeweeException as exc:
        return f"cannot tell whether the database's migrations are applied: {exc}"
    if not names:
        return None
    if isinstance(app, App) and app.settings.require_migrations:
        refused = unapplied_message(names, refused=True)
        raise CommandError(f"{refused} (require_migrations is on, so the server did not start)")
    return unapplied_message(names, refused=False)


_KEY_USES, _MIGRATIONS = "key", "migrations"  # what a worker's start-up line is about


def _start(app: object, target: str) -> None:
    """Prepare a loaded app to serve in this process: its health routes, its start-up hooks."""
    from .app import App
    from .health import record_target

    record_target(app, target)
    metrics = getattr(app, "extensions", {}).get("metrics")
    if metrics is not None:
        from .server.blocked import on_blocked

        on_blocked.append(metrics.count_block)
    if isinstance(app, App):
        try:
            app.startup()
        except Exception as exc:
            raise CommandError(f"a start-up hook failed: {type(exc).__name__}: {exc}") from exc


def _stop(app: object) -> None:
    """Run the app's shutdown hooks, after this process's graceful stop."""
    from .app import App

    if isinstance(app, App):
        app.shutdown()


def _load_in_worker(target: str, warnings_fd: int) -> WSGIApplication:
    app = load(target)
    _start(app, target)
    told = []
    uses = _key_uses_to_warn_about(app)
    if uses:
        told.append(f"{_KEY_USES} {', '.join(uses)}\n")
    unapplied = _unapplied_migrations(app, target)
    if unapplied:
        told.append(f"{_MIGRATIONS} {unapplied}\n")
    if told:
        with contextlib.suppress(OSError):  # a full pipe: the master has been told already
            os.write(warnings_fd, "".join(told).encode())
    return app


def _warn_once_for_workers(warnings_fd: int) -> None:
    # Called by the master once, when all the first workers serve.
    try:
        told = os.read(warnings_fd, 65536).decode(errors="replace")
    except BlockingIOError:
        return
    first: dict[str, str] = {}
    for line in told.splitlines():
        about, _, text = line.partition(" ")
        first.setdefault(about, text)
    if _KEY_USES in first:
        _warn_generated_key(first[_KEY_USES], "the master made for all workers")
    if _MIGRATIONS in first:
        logging.getLogger("microback").warning("%s", first[_MIGRATIONS])


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.keyfile is not None and args.certfile is None:
        raise CommandError("--keyfile needs --certfile: give the certificate too")
    if args.certfile is None:
        return None
    from .server.tls import TLSConfigError, make_ssl_context

    try:
        return make_ssl_context(args.certfile, args.keyfile)
    except TLSConfigError as exc:
        raise CommandError(str(exc)) from exc


def _addresses(args: argparse.Namespace) -> list[Address]:
    from .server.listener import Address

    addresses: list[Address] = list(args.bind)
    if args.host is not None or args.port is not None or not addresses:
        host = DEFAULT_HOST if args.host is None else args.host
        port = DEFAULT_PORT if args.port is None else args.port
        addresses.insert(0, Address(host=host, port=port))
    return addresses


def _bind(addresses: list[Address]) -> list[socket.socket]:
    from .server.listener import ListenError, bind_address

    sockets: list[socket.socket] = []
    try:
        for address in addresses:
            sockets.append(bind_address(address))
    except ListenError as exc:
        for sock in sockets:
            sock.close()
        _remove_unix_sockets(addresses[: len(sockets)])
        raise CommandError(str(exc), EXIT_LISTEN) from exc
    return sockets


def _remove_unix_sockets(addresses: list[Address]) -> None:
    from .server.listener import remove_unix_socket

    for address in addresses:
        remove_unix_socket(address)


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


def load(target: str) -> WSGIApplication:
    """Import *target* and return its app, turning every failure into a :class:`CommandError`."""
    from .server import TargetError, TargetImportError, load_app

    try:
        return load_app(target)
    except TargetImportError as exc:
        # Errors that already are one line for the user: a bad setting, a bad database URL.
        if isinstance(exc.original, SettingsError) or _is_database_config_error(exc.original):
            raise CommandError(str(exc.original)) from exc
        raise CommandError(str(exc)) from exc
    except TargetError as exc:
        raise CommandError(str(exc)) from exc


def _is_database_config_error(error: BaseException) -> bool:
    # Looked up, not imported: importing microback.db would import peewee before serve patches.
    db_errors = sys.modules.get("microback.db.errors")
    config_error = getattr(db_errors, "DatabaseConfigError", None)
    return config_error is not None and isinstance(error, config_error)


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
