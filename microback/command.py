"""What every ``microback`` command shares: its one-line errors, exit statuses, the target.

:mod:`microback.cli` parses the command line and :mod:`microback.serve_command` serves; both
build on this module, so neither imports the other's internals and there is no import circle.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .settings import SettingsError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "EXIT_LISTEN",
    "EXIT_USAGE",
    "SECRET_KEY_VARIABLE",
    "CommandError",
    "generated_key_warning",
    "load",
]

EXIT_LISTEN = 1
EXIT_USAGE = 2
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
SECRET_KEY_VARIABLE = "MICROBACK_SECRET_KEY"  # noqa: S105 (a variable's name, not a key)


class CommandError(Exception):
    """A problem to report as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


def generated_key_warning(uses: str, made: str) -> str:
    """The warning for an app that signs *uses* with a random key *made* ("made at start-up")."""
    return (
        f"No secret key set ({SECRET_KEY_VARIABLE}): {uses} are signed with a random key "
        f"{made}; they will not survive a restart."
    )


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
