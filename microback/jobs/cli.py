"""``microback worker`` and ``microback jobs list|retry|purge``.

``microback/cli.py`` passes every argument after ``worker`` or ``jobs`` here, having patched
with gevent first for ``worker`` (peewee and the database drivers must see the patch when
imported). The app is found as ``serve`` finds it; its :class:`~microback.jobs.Jobs` is
``app.extensions["jobs"]``. Problems are one line on stderr: exit status 2 for a command that
cannot start, 1 for one that failed.

With ``--workers N`` this process supervises N worker processes, each a plain
``microback worker`` (one per process, as ``serve`` runs one server per worker): it restarts
one that dies, passes SIGTERM and SIGINT on, and kills those still running
``graceful_timeout`` + 10 s later.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .queue import Jobs
from .redis import RedisJobs
from .store import FAILED, STATES

__all__ = ["jobs_main", "worker_main"]

EXIT_FAILED = 1
EXIT_USAGE = 2
_TARGET_HELP = "the app: 'module:app', 'path/to/file.py:app' or 'module' for 'module:app'"
logger = logging.getLogger("microback.jobs")


class _Refused(Exception):
    """A problem to report as one line."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}")
    return value


def _find_jobs(target: str, load: Callable[[str], object]) -> Jobs:
    app = load(target)
    jobs = getattr(app, "extensions", {}).get("jobs")
    if not isinstance(jobs, Jobs):
        raise _Refused(
            f"{target} has no background jobs: create them with Jobs(app, db) "
            "from microback.jobs in the app's module"
        )
    return jobs


def _fail(message: str, status: int) -> int:
    print(f"microback: error: {message}", file=sys.stderr)
    return status


# --- microback worker ---------------------------------------------------------------------


def worker_parser() -> argparse.ArgumentParser:
    """Build the parser of ``microback worker``."""
    parser = argparse.ArgumentParser(
        prog="microback worker",
        description="Run an app's background jobs until SIGTERM or Ctrl-C, then stop "
        "gracefully: finish the jobs running, or put them back in the queue.",
    )
    parser.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    parser.add_argument(
        "-c",
        "--concurrency",
        type=_positive,
        default=10,
        metavar="N",
        help="jobs run at once in each process, each in a greenlet (%(default)s)",
    )
    parser.add_argument(
        "-w",
        "--workers",
        type=_positive,
        metavar="N",
        help="run N worker processes under this one; without it, this process works alone",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="on stop, how long running jobs may take to finish before they are put back "
        "in the queue (%(default)g)",
    )
    parser.add_argument(
        "--poll-interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="how often an idle worker looks for due jobs (%(default)g)",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="lowest level logged to stderr; each job is logged at info (%(default)s)",
    )
    return parser


def worker_main(argv: Sequence[str], load: Callable[[str], object]) -> int:
    """Run ``microback worker`` with *argv*; *load* imports a target and returns the app."""
    from ..server import configure_logging
    from .worker import Worker

    args = worker_parser().parse_args(list(argv))
    configure_logging(args.log_level)
    try:
        jobs = _find_jobs(args.target, load)
    except _Refused as exc:
        return _fail(str(exc), EXIT_USAGE)
    if args.workers is not None:
        jobs.close()  # the children connect for themselves
        return _supervise(args, list(argv))
    if isinstance(jobs, RedisJobs):
        jobs.run_consumer(args.concurrency, args.poll_interval, args.graceful_timeout)
        return 0
    Worker(
        jobs,
        concurrency=args.concurrency,
        poll_interval=args.poll_interval,
        graceful_timeout=args.graceful_timeout,
    ).run()
    return 0


def _supervise(args: argparse.Namespace, argv: list[str]) -> int:
    """Run ``args.workers`` single worker processes until SIGTERM or SIGINT."""
    import gevent

    child_argv = [sys.executable, "-m", "microback", "worker", *_without_workers(argv)]
    stopping: list[int] = []

    def stop(signum: int) -> None:
        if not stopping:
            stopping.append(signum)
            for process in children:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)

    children = [_start(child_argv) for _ in range(args.workers)]
    handlers = [gevent.signal_handler(s, stop, s) for s in (signal.SIGTERM, signal.SIGINT)]
    logger.info("worker master %d: %d worker processes", os.getpid(), args.workers)
    try:
        while not stopping:
            gevent.sleep(0.5)
            for index, process in enumerate(children):
                status = process.poll()
                if status is None or stopping:
                    continue
                if status == EXIT_USAGE:
                    stop(signal.SIGTERM)
                    _wait(children, args.graceful_timeout)
                    return EXIT_USAGE
                logger.warning(
                    "worker process %d exited (status %d); starting another",
                    process.pid,
                    status,
                )
                children[index] = _start(child_argv)
        _wait(children, args.graceful_timeout)
    finally:
        for handler in handlers:
            handler.cancel()
    return 0


def _start(argv: list[str]) -> subprocess.Popen[Any]:
    # This Python running microback again, with the options this process was given.
    return subprocess.Popen(argv)  # noqa: S603 (our own command line, not outside input)


def _wait(children: list[subprocess.Popen[Any]], graceful_timeout: float) -> None:
    deadline = time.monotonic() + graceful_timeout + 10
    for process in children:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _without_workers(argv: list[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-w", "--workers"):
            skip = True
        elif not arg.startswith("--workers="):
            kept.append(arg)
    return kept


# --- microback jobs -----------------------------------------------------------------------


def jobs_parser() -> argparse.ArgumentParser:
    """Build the parser of ``microback jobs``."""
    parser = argparse.ArgumentParser(
        prog="microback jobs", description="See and act on an app's background jobs."
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    states = (*STATES, FAILED)

    listing = commands.add_parser("list", help="list the jobs: due first, with their state")
    listing.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    listing.add_argument("--state", choices=states, help="only jobs in this state")
    listing.add_argument("--name", help="only jobs of this job function")
    listing.set_defaults(run=_list)

    retry = commands.add_parser(
        "retry", help="queue dead jobs again, with a fresh set of attempts"
    )
    retry.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    retry.add_argument("ids", metavar="JOB_ID", nargs="*", help="these jobs (default: all dead)")
    retry.set_defaults(run=_retry)

    purge = commands.add_parser("purge", help="delete jobs: the dead ones unless told otherwise")
    purge.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    purge.add_argument("ids", metavar="JOB_ID", nargs="*", help="only these jobs")
    purge.add_argument(
        "--state",
        choices=(*states, "all"),
        default="dead",
        help="delete the jobs in this state (%(default)s); 'all' empties the queue",
    )
    purge.set_defaults(run=_purge)
    return parser


def jobs_main(argv: Sequence[str], load: Callable[[str], object]) -> int:
    """Run ``microback jobs`` with *argv*; *load* imports a target and returns the app."""
    import peewee

    parser = jobs_parser()
    args = parser.parse_args(list(argv))
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        jobs = _find_jobs(args.target, load)
    except _Refused as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        status: int = args.run(jobs, args)
    except peewee.PeeweeException as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return _fail(f"database {jobs.db.display_url}: {message}", EXIT_FAILED)
    except ValueError as exc:  # what Redis cannot do
        return _fail(str(exc), EXIT_USAGE)
    finally:
        jobs.close()
    return status


def _list(jobs: Jobs, args: argparse.Namespace) -> int:
    records = jobs.records(args.state, args.name)
    if not records:
        print("no jobs")
        return 0
    rows = [("ID", "NAME", "STATE", "ATTEMPTS", "DUE (UTC)", "LAST ERROR")]
    for record in records:
        due = datetime.datetime.fromtimestamp(record.run_at, datetime.timezone.utc)
        error = (record.last_error or "").splitlines()
        rows.append(
            (
                record.job_id,
                record.name,
                record.state,
                f"{record.attempts}/{record.max_attempts}",
                due.strftime("%Y-%m-%d %H:%M:%S"),
                error[-1][:80] if error else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())
    return 0


def _retry(jobs: Jobs, args: argparse.Namespace) -> int:
    count = jobs.retry(args.ids or None)
    print(f"queued {count} dead job(s) again")
    return 0 if count or not args.ids else EXIT_FAILED


def _purge(jobs: Jobs, args: argparse.Namespace) -> int:
    state = None if args.state == "all" else args.state
    count = jobs.purge(state, args.ids or None)
    print(f"deleted {count} job(s)")
    return 0
