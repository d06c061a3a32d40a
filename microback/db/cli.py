"""The ``microback db`` commands: new, migrate, rollback, status and create-tables.

``microback/cli.py`` passes every argument after ``db`` to :func:`main` and imports this module
only then: it imports peewee, which ``microback serve`` must not import before gevent patches.

Each command takes the app as ``microback serve`` does (``TARGET``, ``--app`` or
``MICROBACK_APP``) and works on the database in ``app.extensions["db"]``. Migration files live in
``migrations/`` beside the app's module unless ``--directory`` says otherwise. Problems are one
line on stderr: exit status 2 for a command that cannot start (no app, no database), 1 for one
that failed (a migration raised, the database could not be reached).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import peewee

from .autodiff import compare, render
from .migrations import MigrationError, Migrations, summarize

__all__ = ["deploy_findings", "main", "pending_migrations", "unapplied_message"]

EXIT_FAILED = 1
EXIT_USAGE = 2
_TARGET_HELP = (
    "the app: 'module:app', 'path/to/file.py:app' or 'module' (default: --app, then the "
    "MICROBACK_APP environment variable)"
)


class _AppDatabase(Protocol):
    """What these commands use of :class:`microback.db.Database`."""

    database: peewee.Database
    models: Sequence[type[peewee.Model]]
    display_url: str

    def create_tables(self, models: Any = None, safe: bool = True) -> Any: ...

    def close_all(self) -> None: ...


class CommandFailed(Exception):
    """A problem to report as one line, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _Context:
    target: str
    db: _AppDatabase
    migrations: Migrations

    @property
    def directory(self) -> str:
        return _display(self.migrations.directory)


def main(argv: Sequence[str], load: Callable[[str], object]) -> int:
    """Run ``microback db`` with *argv*; *load* imports a target and returns the app."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        context = _open(args, load)
        try:
            status: int = args.run(context, args)
        except peewee.PeeweeException as exc:
            raise CommandFailed(f"database {context.db.display_url}: {summarize(exc)}") from exc
        finally:
            context.db.close_all()
    except CommandFailed as exc:
        return _fail(str(exc), exc.status)
    except MigrationError as exc:
        return _fail(str(exc), EXIT_FAILED)
    return status


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``microback db`` and its commands."""
    parser = argparse.ArgumentParser(
        prog="microback db",
        description="Create and migrate the database of a microback app.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    new = commands.add_parser(
        "new",
        help="write the next numbered migration file",
        description="Write migrations/NNNN_NAME.py with up() and down() to fill in or, with "
        "--auto, written from the difference between the models and the database.",
    )
    new.add_argument("name", metavar="NAME", help="what the migration does, as add_note_title")
    _add_common(new, run_new)
    new.add_argument(
        "--auto",
        action="store_true",
        help="write up() and down() from the difference between the models and the database",
    )

    migrate = commands.add_parser(
        "migrate",
        help="apply the pending migrations in order",
        description="Apply each pending migration, with its record, in one transaction where "
        "the database allows (PostgreSQL, SQLite; not MySQL or MariaDB).",
    )
    _add_common(migrate, run_migrate)
    migrate.add_argument("--to", metavar="NAME", help="stop after this one (name or number)")
    migrate.add_argument(
        "--fake",
        action="store_true",
        help="record them as applied without running them (tables made by create-tables)",
    )

    rollback = commands.add_parser(
        "rollback",
        help="revert the last applied migration",
        description="Run down() of the last applied migration, or of every one back to and "
        "including --through.",
    )
    _add_common(rollback, run_rollback)
    rollback.add_argument("--through", metavar="NAME", help="revert back to and including this")

    status = commands.add_parser(
        "status",
        help="list the migrations, applied and pending",
        description="List every migration, applied or pending, and whether the schema "
        "matches the models.",
    )
    _add_common(status, run_status)
    status.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 if a migration is pending or the models differ from the schema",
    )

    create = commands.add_parser(
        "create-tables",
        help="create the models' tables that do not exist (for a quick start)",
        description="Create every model's table that does not exist yet; existing tables are "
        "not changed. Use migrations once the data matters.",
    )
    _add_common(create, run_create_tables)
    return parser


def _add_common(parser: argparse.ArgumentParser, run: Callable[..., int]) -> None:
    parser.add_argument("target", metavar="TARGET", nargs="?", help=_TARGET_HELP)
    parser.add_argument("--app", metavar="TARGET", help="the app, when TARGET is not given")
    parser.add_argument(
        "-d",
        "--directory",
        metavar="DIR",
        help="the migration files' folder (default: 'migrations' beside the app's module)",
    )
    parser.set_defaults(run=run)


def run_new(context: _Context, args: argparse.Namespace) -> int:
    """Write the next migration file, empty or from the schema difference."""
    migrations = context.migrations
    if not args.auto:
        print(f"wrote {_display(migrations.new(args.name))}")
        return 0
    pending = migrations.pending()
    if pending:
        raise CommandFailed(
            f"{len(pending)} migration(s) are pending ({', '.join(m.name for m in pending)}); "
            "apply them first with 'microback db migrate', or --auto would repeat them"
        )
    if not context.db.models:
        # Every table would be proposed for dropping: far likelier a module not imported.
        raise CommandFailed(
            f"{context.target} defines no models on db.Model; import the module that defines "
            "them from the app's module, or --auto would drop every table",
            EXIT_USAGE,
        )
    database = context.db.database
    changes = compare(database, context.db.models, keep=[migrations.table_name])
    if not changes:
        print("the schema matches the models; no migration written")
        return 0
    path = migrations.new(args.name, render(changes, database, _title(args.name)))
    print(f"wrote {_display(path)}:")
    for line in changes.describe():
        print(f"  {line}")
    print("read it, then apply it with 'microback db migrate'")
    return 0


def run_migrate(context: _Context, args: argparse.Namespace) -> int:
    """Apply the pending migrations, each reported as it is done."""
    verb = "recorded as applied" if args.fake else "applied"
    done = context.migrations.migrate(
        args.to, fake=args.fake, report=lambda name: print(f"{verb} {name}", flush=True)
    )
    if not done:
        print(f"nothing to apply: every migration in {context.directory} is applied")
    return 0


def run_rollback(context: _Context, args: argparse.Namespace) -> int:
    """Revert the last migration, or back through ``--through``."""
    status = context.migrations.status()
    if all(m.pending for m in status):
        print("nothing to roll back: no migration is applied")
        return 0
    context.migrations.rollback(
        args.through, report=lambda name: print(f"rolled back {name}", flush=True)
    )
    return 0


def run_status(context: _Context, args: argparse.Namespace) -> int:
    """Print the database, each migration's state, and whether the models match the schema."""
    migrations = context.migrations
    print(f"database: {context.db.display_url}")
    print(f"migrations: {context.directory}")
    rows = migrations.status()
    width = max((len(m.name) for m in rows), default=0)
    for m in rows:
        mark = " " if m.pending else ("?" if m.path is None else "x")
        when = "pending" if m.applied is None else f"applied {m.applied:%Y-%m-%d %H:%M:%S}"
        gone = ", its file is missing" if m.path is None else ""
        print(f"[{mark}] {m.name:<{width}}  {when}{gone}")
    pending = [m for m in rows if m.pending]
    changes = None
    if pending:
        print(f"{len(pending)} pending: apply with 'microback db migrate'")
    else:
        if not rows:
            print("no migrations yet: write one with 'microback db new NAME'")
        changes = compare(context.db.database, context.db.models, keep=[migrations.table_name])
        if changes:
            print(
                f"the models differ from the schema ({'; '.join(changes.describe())}): "
                "'microback db new NAME --auto' writes a migration"
            )
        else:
            print("the schema matches the models")
    return EXIT_FAILED if args.check and (pending or changes) else 0


def run_create_tables(context: _Context, args: argparse.Namespace) -> int:
    """Create the tables that do not exist yet, and say which."""
    database = context.db.database
    before = set(database.get_tables())
    context.db.create_tables()
    created = [t for t in database.get_tables() if t not in before]
    for table in created:
        print(f"created table {table}")
    if not created:
        print("every model's table exists; nothing created")
    pending = context.migrations.pending()
    if created and pending:
        print(
            f"{len(pending)} migration(s) are pending: if these tables already have what they "
            "make, record them with 'microback db migrate --fake'"
        )
    return 0


def pending_migrations(app: object, target: str) -> list[str]:
    """Name the migrations in ``migrations/`` beside *target*'s module that the app's database
    has not applied: what ``microback serve`` warns about (or refuses to start with) and
    ``check --deploy`` reports. Empty for an app without a database or that folder.
    """
    found = _app_migrations(app, target)
    if found is None:
        return []
    db, migrations = found
    # Leave no connection behind: a master may fork after this (see Database.check).
    with db._connected():
        return [m.name for m in migrations.pending()]


def deploy_findings(app: object, target: str) -> list[tuple[str, str]]:
    """``check --deploy``'s findings about migrations: (setting, message) pairs."""
    if _app_migrations(app, target) is None:
        return []
    found = []
    names = pending_migrations(app, target)
    if names:
        found.append(("migrations", unapplied_message(names, refused=True)))
    settings = getattr(app, "settings", None)
    if not getattr(settings, "require_migrations", True):
        found.append(
            (
                "require_migrations",
                "the server starts even when a migration is not applied, and answers 500 "
                "where the schema is needed; set MICROBACK_REQUIRE_MIGRATIONS=true",
            )
        )
    return found


def _app_migrations(app: object, target: str) -> tuple[Any, Migrations] | None:
    extensions = getattr(app, "extensions", None)
    db = extensions.get("db") if isinstance(extensions, dict) else None
    directory = _beside(target) / "migrations"
    if db is None or not directory.is_dir():
        return None
    return db, Migrations(db.database, directory)


def unapplied_message(names: Sequence[str], *, refused: bool) -> str:
    """One line naming the migrations *names* not applied, and what to do about them."""
    listed = f"{len(names)} migration(s) not applied to the database ({', '.join(names)})"
    if refused:
        return f"{listed}: apply them with 'microback db migrate' before serving"
    return (
        f"{listed}: requests that need them will fail; apply them with 'microback db migrate' "
        "(MICROBACK_REQUIRE_MIGRATIONS=true refuses to start instead)"
    )


def _open(args: argparse.Namespace, load: Callable[[str], object]) -> _Context:
    target = args.target or args.app or os.environ.get("MICROBACK_APP")
    if not target:
        raise CommandFailed(
            "no app given: name it as TARGET ('module:app' or 'path/to/file.py:app'), "
            "with --app, or in MICROBACK_APP",
            EXIT_USAGE,
        )
    app = load(target)
    extensions = getattr(app, "extensions", None)
    db = extensions.get("db") if isinstance(extensions, dict) else None
    if db is None:
        raise CommandFailed(
            f"{target} has no database: create one with Database(app, url) from microback.db",
            EXIT_USAGE,
        )
    directory = Path(args.directory) if args.directory else _beside(target) / "migrations"
    return _Context(target, db, Migrations(db.database, directory))


def _beside(target: str) -> Path:
    """The folder of the module that *target* names (already imported by the loader)."""
    where = target.split(":", 1)[0]
    if where.endswith(".py") or "/" in where or os.sep in where:
        return Path(where).parent
    module = sys.modules.get(where)
    found = getattr(module, "__file__", None)
    return Path(found).parent if found else Path.cwd()


def _title(name: str) -> str:
    words = name.replace("_", " ").replace("-", " ").strip()
    return (words[:1].upper() + words[1:] + ".") if words else "A migration."


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _fail(message: str, status: int) -> int:
    print(f"microback: error: {message}", file=sys.stderr)
    return status
