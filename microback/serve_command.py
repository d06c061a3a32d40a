"""``microback serve``: load the app, serve it in one process or under a master.

The command line is parsed in :mod:`microback.cli`; this module is what runs once it is, kept
apart so that ``cli`` holds the commands and their options, and this the serving itself.
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

from .command import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    EXIT_LISTEN,
    SECRET_KEY_VARIABLE,
    CommandError,
    generated_key_warning,
    load,
)
from .settings import SHARED_SECRET_VARIABLE

if TYPE_CHECKING:
    import socket
    import ssl

    from _typeshed.wsgi import WSGIApplication

    from .server.config import ServerConfig
    from .server.listener import Address

__all__ = ["run_serve"]


def run_serve(args: argparse.Namespace) -> int:
    """Serve the target, gevent's patch applied: in this process, or with a master and workers.

    Without ``--workers`` or ``--reload`` this process imports the app and serves it. With
    them it becomes the master: it binds the sockets and forks the workers, and each worker
    imports the app (see microback/server/worker.py for why the master does not).
    """
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
        slow_request_threshold=args.slow_request_threshold or None,
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
    """Prepare a loaded app to serve in this process: its health routes, its start-up hooks,
    and the garbage collector (:mod:`.server.heap`)."""
    from .app import App
    from .health import record_target
    from .server.heap import freeze_startup_objects

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
    freeze_startup_objects()


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
