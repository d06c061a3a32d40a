"""``microback shell TARGET``: a Python prompt with the app, its database and models bound.

To try a query, fix a row or call a helper by hand, with the app loaded as ``serve`` loads
it (same target, same ``MICROBACK_*`` and ``DATABASE_URL`` variables). The prompt is
IPython's when it is installed (``--plain`` asks for Python's own). The database is
connected as a request would be: a connection is opened before the prompt and every
connection closed when it ends; each statement commits on its own unless run inside
``with db.atomic():``.
"""

from __future__ import annotations

import argparse
import code
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .command import load

__all__ = ["add_shell_command", "shell_namespace"]


def add_shell_command(commands: Any, target_help: str) -> None:
    """Add ``shell`` to the ``microback`` command's subparsers."""
    shell = commands.add_parser(
        "shell",
        help="a Python prompt with an app, its database and models",
        description="Load the app as 'serve' would and start a Python prompt (IPython when "
        "installed) with app, db and the models bound, the database connected.",
    )
    shell.add_argument("target", metavar="TARGET", help=target_help)
    shell.add_argument(
        "--plain", action="store_true", help="Python's own prompt even if IPython is installed"
    )
    shell.set_defaults(run=run_shell)


def run_shell(args: argparse.Namespace) -> int:
    """Load the target, bind its names, and run the prompt until it ends."""
    # Imported here: the microback command imports this module before serve patches gevent.
    from .server.target import import_module, parse_target

    app = load(args.target)
    module = import_module(parse_target(args.target))  # already imported by load: no rerun
    namespace = shell_namespace(app, module)
    banner = _banner(args.target, namespace)
    with _connected(namespace.get("db")):
        if not args.plain and _ipython(namespace, banner):
            return 0
        _enable_completion(namespace)
        code.interact(banner=banner, local=namespace, exitmsg="")
    return 0


def shell_namespace(app: Any, module: Any) -> dict[str, Any]:
    """``app``, ``db`` (the app's Database) and the models of the database and the module."""
    namespace: dict[str, Any] = {"app": app}
    db = getattr(app, "extensions", {}).get("db")
    models: list[type[Any]] = list(db.models) if db is not None else []
    peewee = sys.modules.get("peewee")  # imported by the app if it has models at all
    if peewee is not None:
        models += [
            value
            for name, value in vars(module).items()
            if not name.startswith("_")
            and isinstance(value, type)
            and issubclass(value, peewee.Model)
            and value is not peewee.Model
            and value not in models
        ]
    for model in models:
        namespace.setdefault(model.__name__, model)
    if db is not None:
        namespace["db"] = db
    return namespace


@contextmanager
def _connected(db: Any) -> Iterator[None]:
    if db is None:
        yield
        return
    # Loading the app checked that the database answers (Database(app, ...) connects once).
    db.database.connect(reuse_if_open=True)
    try:
        yield
    finally:
        db.close_all()


def _banner(target: str, namespace: dict[str, Any]) -> str:
    names = ", ".join(sorted(namespace, key=lambda name: (name not in ("app", "db"), name)))
    python = sys.version.split()[0]
    return f"microback shell for {target} (Python {python})\nBound: {names}"


def _ipython(namespace: dict[str, Any], banner: str) -> bool:
    try:
        from IPython import start_ipython
    except ImportError:
        return False
    print(banner)
    start_ipython(
        argv=["--no-banner", "--TerminalInteractiveShell.confirm_exit=False"], user_ns=namespace
    )
    return True


def _enable_completion(namespace: dict[str, Any]) -> None:
    # Tab completion of the bound names, where the terminal has readline (not on a pipe).
    if not sys.stdin.isatty():
        return
    try:
        import readline
        import rlcompleter
    except ImportError:
        return
    readline.set_completer(rlcompleter.Completer(namespace).complete)
    readline.parse_and_bind("tab: complete")
