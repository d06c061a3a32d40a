"""Driver errors turned into HTTP answers: constraint violations and an unavailable database.

A driver error that a client can act on is re-raised as an exception that is *both* a werkzeug
``HTTPException`` and the peewee error it replaces (``UniqueViolation`` is a ``Conflict`` and a
``peewee.IntegrityError``): the app answers it like any HTTP error, and code that catches
peewee's classes (``get_or_create`` does) keeps working. The message names the field; the raw
database message, which may quote the row's values, is kept in ``raw`` and logged, never sent.

Everything else (a missing table, a syntax error) stays a peewee error: a bug, answered 500.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterable
from typing import Any

import peewee
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import BadRequest, Conflict, ServiceUnavailable

from ..http import Request, Response, error_response
from ._peewee import index_expressions, index_name

__all__ = [
    "ConstraintViolation",
    "DatabaseConfigError",
    "DatabaseNotWritable",
    "DatabaseUnavailable",
    "DatabaseUnreachableError",
    "InvalidValue",
    "MissingReference",
    "NotNullViolation",
    "PoolExhausted",
    "StillReferenced",
    "UniqueViolation",
    "translate",
]

logger = logging.getLogger("microback.db")


class DatabaseConfigError(ValueError):
    """The database URL or an option cannot be used; the message is one line to show as is.

    The password in a URL is always masked in the message.
    """


class DatabaseUnreachableError(DatabaseConfigError):
    """The database was configured correctly but could not be reached at start-up."""


# --- answers to requests --------------------------------------------------------------------


class DatabaseUnavailable(ServiceUnavailable, peewee.OperationalError):
    """503: the database is down, restarting, locked or overloaded; the client may retry.

    ``raw`` is the driver's message (logged, not sent). ``deadlock`` is true when the
    database broke a deadlock by failing this statement: a statement run on its own (not in
    a transaction) can simply be run again.
    """

    raw = ""
    deadlock = False

    def __init__(self, description: str, *, raw: str = "", retry_after: int = 1) -> None:
        super().__init__(description, retry_after=retry_after)
        self.raw = raw


class PoolExhausted(DatabaseUnavailable):
    """503: every pooled connection stayed in use for the whole bounded wait."""


class DatabaseNotWritable(DatabaseUnavailable):
    """503: SQLite cannot write: the file or its directory is read-only, or the disk is full.

    Reads go on; an operator has to act, so it is logged as an error saying what to check.
    """


class ConstraintViolation(peewee.IntegrityError):
    """Base of the constraint errors; ``field`` names the model field (or ``None``)."""

    field: str | None = None
    raw: str = ""


class UniqueViolation(Conflict, ConstraintViolation):
    """409: another row already has this value in a unique field."""


class NotNullViolation(BadRequest, ConstraintViolation):
    """400: a required field was missing (null)."""


class MissingReference(BadRequest, ConstraintViolation):
    """400: a foreign key points at a row that does not exist."""


class StillReferenced(Conflict, ConstraintViolation):
    """409: a row cannot be deleted (or its key changed) while other rows refer to it."""


class OtherConstraint(Conflict, ConstraintViolation):
    """409: a check or exclusion constraint refused the change."""


class InvalidValue(BadRequest, peewee.DataError):
    """400: a value the database cannot store (too long, NUL in PostgreSQL text, bad type).

    ``field`` names the field when the database says which; ``raw`` (logged, never sent)
    may quote the value.
    """

    field: str | None = None
    raw: str = ""


def _violation(
    cls: type[ConstraintViolation], message: str, field: str | None, raw: str
) -> ConstraintViolation:
    error = cls(message)  # werkzeug's __init__(description)
    error.field, error.raw = field, raw
    return error


# --- what the schema can tell about a failure ------------------------------------------------


class SchemaNames:
    """Map the table, column and index names a driver reports back to models and fields."""

    def __init__(self, models: Iterable[type[peewee.Model]]) -> None:
        self.models = models  # the Database's own list: models defined later count too

    def field(self, table: str | None, column: str) -> str:
        """The field name for ``column`` (``owner_id`` -> ``owner``), or the column itself."""
        for model in self.models:
            if table is None or model._meta.table_name == table:
                for field in model._meta.sorted_fields:
                    if field.column_name == column:
                        return str(field.name)
        return column

    def label(self, table: str | None) -> str:
        """What a row of ``table`` is called in a message: the model's name, lower case."""
        for model in self.models:
            if model._meta.table_name == table:
                return model.__name__.lower()
        return table or "row"

    def index_fields(self, index: str) -> tuple[str | None, list[str]]:
        """The table and field names of the index called ``index`` (MySQL names only those)."""
        index = index.rsplit(".", 1)[-1]  # MySQL 8 says 'table.index', MariaDB 'index'
        for model in self.models:
            for model_index in model._meta.fields_to_index():
                if index_name(model_index) == index:
                    names = [
                        str(expr.name)
                        for expr in index_expressions(model_index)
                        if isinstance(expr, peewee.Field)
                    ]
                    return model._meta.table_name, names
        return None, []


# --- translation -----------------------------------------------------------------------------

# PyMySQL codes that mean "try again": cannot connect, server gone or shutting down, connection
# killed, too many connections, lock wait timeout, deadlock, query interrupted.
_MYSQL_UNAVAILABLE = {1040, 1053, 1205, 1213, 1317, 1927, 2002, 2003, 2006, 2013, 2055, 4031}
# Constraint failures that PyMySQL raises as OperationalError, not IntegrityError: a field
# without a default left out (1364), a check constraint (MariaDB 4025, MySQL 3819).
_MYSQL_INTEGRITY = {1364, 3819, 4025}
_SQLITE_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED"}


def original(error: BaseException) -> BaseException:
    """The driver's exception behind a peewee error (peewee keeps it as ``orig``)."""
    found = getattr(error, "orig", None) or error.__context__
    return found if isinstance(found, BaseException) else error


def _driver(error: BaseException) -> str:
    return type(error).__module__.split(".")[0]


def _mysql_code(error: BaseException) -> int | None:
    if _driver(error) != "pymysql" or not error.args or not isinstance(error.args[0], int):
        return None
    return error.args[0]


def first_line(error: BaseException) -> str:
    """The first line of an error's message: drivers add hints and context below it."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def translate(
    error: BaseException, schema: SchemaNames, *, sql: str = "", retry_after: int = 1
) -> BaseException | None:
    """Return the HTTP-answerable error for a database ``error``, or ``None`` to leave it be.

    ``sql`` is the statement that failed, if known: SQLite says only "FOREIGN KEY constraint
    failed", and whether that was a DELETE tells a dangling reference from a missing one.
    """
    if isinstance(error, ConstraintViolation | DatabaseUnavailable):
        return None
    if isinstance(error, MaxConnectionsExceeded):
        return PoolExhausted(
            "the server is busy: every database connection stayed in use; try again",
            raw=str(error),
            retry_after=retry_after,
        )
    driver_error = original(error)
    if _lost_prepared_statement(driver_error):
        return DatabaseConfigError(
            f"{first_line(driver_error)}: the database URL leads to a pooler in transaction "
            "mode (PgBouncer's pool_mode = transaction), where a statement prepared on one "
            "server connection is missing on the next; add ?transaction_pooling=true to the URL"
        )
    if isinstance(error, peewee.IntegrityError) or _mysql_code(driver_error) in _MYSQL_INTEGRITY:
        return _integrity(driver_error, schema, sql)
    if isinstance(error, peewee.DataError) and not isinstance(error, InvalidValue):
        return _invalid_value(original(error), schema)
    if isinstance(error, OverflowError):
        # sqlite3 cannot bind an int beyond 64 bits; Model.save names the field before this.
        return _invalid(None, "an integer is too large for the database", str(error))
    not_writable = _sqlite_not_writable(original(error))
    if not_writable is not None:
        return DatabaseNotWritable(
            "the database cannot store changes at the moment; try again later",
            raw=not_writable,
            retry_after=retry_after,
        )
    if isinstance(error, peewee.OperationalError | peewee.InterfaceError) and _unavailable(
        original(error)
    ):
        unavailable = DatabaseUnavailable(
            "the database is unavailable or busy; try again shortly",
            raw=first_line(original(error)),
            retry_after=retry_after,
        )
        unavailable.deadlock = _deadlock(original(error))
        return unavailable
    return None


def _lost_prepared_statement(error: BaseException) -> bool:
    # psycopg 3 prepares a statement run often (named _pg3_N) on its connection; a pooler
    # in transaction mode runs the next transaction on another server connection: 26000
    # (does not exist) or 42P05 (already exists, on a connection another client prepared).
    sqlstate = getattr(error, "sqlstate", None)
    return sqlstate in ("26000", "42P05") and "_pg3_" in str(error)


def _deadlock(error: BaseException) -> bool:
    # MySQL 1213; PostgreSQL 40P01 (deadlock) and 40001 (serialization failure).
    code = error.args[0] if _driver(error) == "pymysql" and error.args else None
    return code == 1213 or getattr(error, "sqlstate", None) in ("40P01", "40001")


# MySQL names the column as 'name', or as `database`.`table`.`column` (MariaDB's 1366); only
# the last part is the column, and the database's name must not reach the client.
_COLUMN = re.compile(r"""column (?:`[^`]*`\.)*[`'"]?(\w+)[`'"]?""")


def _invalid_value(error: BaseException, schema: SchemaNames) -> InvalidValue:
    raw = first_line(error)
    found = _COLUMN.search(raw)  # MySQL names the column; PostgreSQL mostly does not
    field = schema.field(None, found.group(1)) if found else None
    return _invalid(field, "too long, or of the wrong kind", raw)


def _invalid(field: str | None, problem: str, raw: str) -> InvalidValue:
    where = f"the {field!r} field" if field else "its field"
    invalid = InvalidValue(f"a value does not fit {where}: {problem}")
    invalid.field, invalid.raw = field, raw
    return invalid


# SQLite's primary result codes for a file that cannot take writes.
_SQLITE_NOT_WRITABLE = {
    8: "check that the database file, its directory and its -wal and -shm files are "
    "writable by this process",  # SQLITE_READONLY
    13: "free disk space (or raise max_page_count)",  # SQLITE_FULL
}


def _sqlite_not_writable(error: BaseException) -> str | None:
    """The log line for a SQLite error that means "this file cannot take writes", or None."""
    if not isinstance(error, sqlite3.Error):
        return None
    hint = _SQLITE_NOT_WRITABLE.get(getattr(error, "sqlite_errorcode", 0) & 0xFF)
    return f"SQLite cannot write: {first_line(error)}; {hint}" if hint else None


def _unavailable(error: BaseException) -> bool:
    driver = _driver(error)
    if isinstance(error, sqlite3.OperationalError):
        return getattr(error, "sqlite_errorname", "") in _SQLITE_BUSY or str(error).startswith(
            ("database is locked", "database table is locked", "unable to open database")
        )
    if driver == "psycopg":
        import psycopg

        if not isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return False
        state = getattr(error, "sqlstate", None) or ""
        return not state.startswith("54")  # 54: a program limit, a bug rather than an outage
    if driver == "pymysql":
        import pymysql

        if isinstance(error, pymysql.err.InterfaceError):
            return True  # PyMySQL's "(0, '')": the connection is already closed
        return isinstance(error, pymysql.err.OperationalError) and (
            _mysql_code(error) in _MYSQL_UNAVAILABLE
        )
    return False


def _integrity(error: BaseException, schema: SchemaNames, sql: str) -> ConstraintViolation:
    raw = first_line(error)
    kind, table, fields = _parse_integrity(error, schema)
    if kind == "missing_reference" and not fields and sql.lstrip()[:6].upper() == "DELETE":
        kind = "still_referenced"
    field = fields[0] if len(fields) == 1 else None
    names = ", ".join(repr(name) for name in fields)
    thing = schema.label(table)
    if kind == "unique":
        if not fields:
            return _violation(UniqueViolation, f"a {thing} with these values exists", None, raw)
        plural = "field must" if len(fields) == 1 else "fields must together"
        return _violation(
            UniqueViolation,
            f"the {names} {plural} be unique: another {thing} already has this value",
            field,
            raw,
        )
    if kind == "not_null":
        return _violation(NotNullViolation, f"the {names} field is required", field, raw)
    if kind == "missing_reference":
        if not fields:
            message = "a field refers to a row that does not exist"
        else:
            message = f"the {names} field refers to a row that does not exist"
        return _violation(MissingReference, message, field, raw)
    if kind == "still_referenced":
        where = f" (by {thing}.{fields[0]})" if fields else ""
        return _violation(
            StillReferenced, f"this row is still referenced by other rows{where}", None, raw
        )
    return _violation(
        OtherConstraint, "the change was refused by a database constraint", field, raw
    )


_PG_KEY = re.compile(r"Key \((?P<columns>[^)]*)\)")
_PG_KINDS = {"23505": "unique", "23502": "not_null"}
_MYSQL_KEY = re.compile(r"for key '(?P<index>[^']+)'")
_MYSQL_COLUMN = re.compile(r"(?:Column|Field) '(?P<column>[^']+)'")
_MYSQL_FK = re.compile(
    r"\(`[^`]*`\.`(?P<table>[^`]+)`, CONSTRAINT .*?FOREIGN KEY \(`(?P<col>[^`]+)`"
)
_SQLITE = re.compile(r"(?P<kind>UNIQUE|NOT NULL) constraint failed: (?P<columns>.+)$")


def _parse_integrity(
    error: BaseException, schema: SchemaNames
) -> tuple[str, str | None, list[str]]:
    """Classify a driver's integrity error: (kind, table, field names)."""
    driver = _driver(error)
    message = str(error)
    if driver == "psycopg":
        diag: Any = getattr(error, "diag", None)
        state = getattr(error, "sqlstate", None) or ""
        table = getattr(diag, "table_name", None)
        detail = getattr(diag, "message_detail", None) or ""
        if state == "23502":
            column = getattr(diag, "column_name", None)
            return "not_null", table, [schema.field(table, column)] if column else []
        match = _PG_KEY.search(detail)
        columns = [c.strip().strip('"') for c in match["columns"].split(",")] if match else []
        if state == "23503":
            if "is still referenced" in detail:
                # The detail names the referencing table only in message_primary.
                referencing = re.search(r'on table "(?P<t>[^"]+)"', message)
                other = re.search(r'from table "(?P<t>[^"]+)"', detail) or referencing
                table = other["t"] if other else None
                fk = re.search(r'constraint "(?P<c>[^"]+)"', message)
                fields = _fk_field_from_constraint(fk["c"] if fk else "", table, schema)
                return "still_referenced", table, fields
            return "missing_reference", table, [schema.field(table, c) for c in columns]
        kind = _PG_KINDS.get(state, "other")
        return kind, table, [schema.field(table, c) for c in columns]
    if driver == "pymysql":
        code = error.args[0] if error.args else None
        text = str(error.args[1]) if len(error.args) > 1 else message
        if code == 1062:
            match = _MYSQL_KEY.search(text)
            table, fields = schema.index_fields(match["index"]) if match else (None, [])
            return "unique", table, fields
        if code in (1048, 1364):
            match = _MYSQL_COLUMN.search(text)
            return "not_null", None, [schema.field(None, match["column"])] if match else []
        if code in (1451, 1452):
            match = _MYSQL_FK.search(text)
            table = match["table"] if match else None
            fields = [schema.field(table, match["col"])] if match else []
            return ("still_referenced" if code == 1451 else "missing_reference"), table, fields
        return "other", None, []
    if isinstance(error, sqlite3.IntegrityError):
        match = _SQLITE.search(message)
        if match:
            pairs = [c.strip().split(".", 1) for c in match["columns"].split(",")]
            table = pairs[0][0] if len(pairs[0]) == 2 else None
            fields = [schema.field(p[0], p[1]) if len(p) == 2 else p[0] for p in pairs]
            return ("unique" if match["kind"] == "UNIQUE" else "not_null"), table, fields
        if "FOREIGN KEY" in message:
            # SQLite does not say which key failed; Model.save() finds it (models.py).
            return "missing_reference", None, []
    return "other", None, []


def _fk_field_from_constraint(
    constraint: str, table: str | None, schema: SchemaNames
) -> list[str]:
    # PostgreSQL names foreign keys '<table>_<column>_fkey' unless told otherwise.
    if table and constraint.startswith(table + "_") and constraint.endswith("_fkey"):
        return [schema.field(table, constraint[len(table) + 1 : -len("_fkey")])]
    return []


# --- logging the raw message -----------------------------------------------------------------


def answer(request: Request, error: Any) -> Response:
    """Answer a translated database error; log the raw driver message, which is not sent."""
    logger.log(
        logging.ERROR if isinstance(error, DatabaseNotWritable) else logging.WARNING,
        "%s %s: %s (%s)",
        request.method,
        request.path,
        error.description,
        getattr(error, "raw", "") or "no driver message",
    )
    return error_response(request, error)
