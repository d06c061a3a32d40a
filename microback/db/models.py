"""The model base class: peewee's ``Model`` with the helpers a JSON API needs.

Each :class:`~microback.db.Database` makes its own subclass, ``db.Model``, bound to it; the
helpers live here so that they are documented and tested once.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any, NamedTuple, TypeVar

import peewee

from ..http import abort
from ._peewee import rows_of
from .errors import InvalidValue, MissingReference

__all__ = ["Model", "as_utc", "private"]

_F = TypeVar("_F", bound=peewee.Field)
_M = TypeVar("_M", bound="Model")

# The bits of each integer column type (peewee's field_type) on PostgreSQL and MySQL/MariaDB;
# SQLite stores every integer in 64 bits.
_INTEGER_BITS = {"SMALLINT": 16, "INT": 32, "AUTO": 32, "BIGINT": 64, "BIGAUTO": 64}


def private(field: _F) -> _F:
    """Mark ``field`` private: :meth:`Model.to_dict` leaves it out unless named in ``only``.

    For what must never reach a client by accident, such as a password hash::

        password_hash = private(fields.CharField())
    """
    field.microback_private = True  # type: ignore[attr-defined]
    return field


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """Return ``value`` as an aware UTC datetime; a naive one is taken as UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


class _PrimaryKeyLookup(NamedTuple):
    """``SELECT ... WHERE pk = ? LIMIT 1`` of one model, made once for one database."""

    database: Any  # peewee's Database
    key: Any  # the primary key field, which converts the value
    sql: str
    params_after_key: tuple[Any, ...]  # the LIMIT and OFFSET
    query: Any  # peewee's ModelSelect, which turns the cursor's rows into model instances


class Model(peewee.Model):
    """Base of ``db.Model``: ``get_or_404``, ``to_dict``, and constraint errors naming fields."""

    class Meta:
        # "note_tag" rather than peewee 3's "notetag" for class NoteTag.
        legacy_table_names = False

    #: Filled by Database: the list ``db.models`` that subclasses append themselves to.
    __microback_models__: list[type[Model]] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        registry = cls.__dict__.get("__microback_models__", cls.__microback_models__)
        if registry is not None and "__microback_models__" not in cls.__dict__:
            registry.append(cls)

    @classmethod
    def get_by_id(cls: type[_M], pk: Any) -> _M:
        """Return the row whose primary key is ``pk``, as peewee does; raise ``DoesNotExist``.

        The most common query of an API, so its SQL is made once per model and database and
        reused: peewee builds it anew on each call, which cost more than the query itself
        (benchmarks/README.md). The value is converted by the field and
        sent as a parameter, as peewee sends it.
        """
        lookup = _primary_key_lookup(cls, pk) if type(pk) in (int, str) else None
        if lookup is None:
            return super().get_by_id(pk)
        params = (lookup.key.db_value(pk), *lookup.params_after_key)
        rows = rows_of(lookup.query, lookup.database.execute_sql(lookup.sql, params))
        try:
            return rows[0]  # type: ignore[no-any-return]
        except IndexError:
            raise cls.DoesNotExist(  # type: ignore[attr-defined]
                f"{cls} instance matching query does not exist:\n"
                f"SQL: {lookup.sql}\nParams: {list(params)}"
            ) from None

    @classmethod
    def get_or_404(cls: type[_M], *query: Any, message: str | None = None, **filters: Any) -> _M:
        """Return the one row matching ``query``, or answer 404 ("Note not found").

        Takes what ``Model.get`` takes: expressions (``Note.id == note_id``) or keyword
        filters (``id=note_id``). Values are always sent as parameters, never spliced in.
        """
        row = cls.get_or_none(*query, **filters)
        if row is None:
            abort(404, message or f"{cls.__name__} not found")
        return row

    def to_dict(
        self, *, exclude: Iterable[str] = (), only: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Return the fields as a dict for a JSON answer, by field name, in definition order.

        A foreign key gives the id it holds (``"owner": 3``) without loading the row. A
        ``DateTimeField`` gives an aware UTC datetime (a naive one is taken as UTC), which JSON
        writes as ``2024-05-01T10:00:00+00:00``: the same on create as on every read.
        Private fields (see :func:`private`) are left out unless named in ``only``. An unknown
        name in ``only`` or ``exclude`` raises ``ValueError``: a typo must not silently leak
        or drop a field.
        """
        meta = self._meta
        excluded = set(exclude)
        chosen = list(only) if only is not None else None
        unknown = [n for n in [*excluded, *(chosen or ())] if n not in meta.fields]
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no field {unknown[0]!r}; "
                f"fields: {', '.join(meta.sorted_field_names)}"
            )
        if chosen is None:
            names = [
                f.name
                for f in meta.sorted_fields
                if not getattr(f, "microback_private", False) and f.name not in excluded
            ]
        else:
            names = [n for n in meta.sorted_field_names if n in chosen and n not in excluded]
        data = self.__data__
        values = {name: data.get(name) for name in names}
        for name in _datetime_fields(type(self)):
            value = values.get(name)
            if isinstance(value, datetime.datetime):
                values[name] = as_utc(value)
        return values

    def save(self, force_insert: bool = False, only: Any = None) -> int:
        """Save as peewee does, answering 400 naming the field for a value the column cannot
        hold: an integer out of its range, a string longer than ``max_length``. Checked here so
        that every database answers alike (SQLite would store the long string, and fail on the
        integer with an error that names no field). A dangling foreign key on SQLite is
        answered naming the field too.
        """
        self._check_values(only)
        try:
            return int(super().save(force_insert=force_insert, only=only) or 0)
        except MissingReference as exc:
            if exc.field is None:
                self._name_missing_reference(exc)
            raise

    def _check_values(self, only: Any) -> None:
        meta = self._meta
        names = [f if isinstance(f, str) else f.name for f in only] if only else self.__data__
        for name in names:
            field = meta.fields.get(name)
            value = self.__data__.get(name)
            if field is None or value is None:
                continue
            problem = _value_problem(field, value)
            if problem:
                invalid = InvalidValue(f"the {name!r} field {problem}")
                invalid.field = name
                raise invalid

    def _name_missing_reference(self, error: MissingReference) -> None:
        # SQLite reports only "FOREIGN KEY constraint failed"; look for the key with no row.
        for field in self._meta.sorted_fields:
            if not isinstance(field, peewee.ForeignKeyField):
                continue
            value = self.__data__.get(field.name)
            if value is None:
                continue
            target = field.rel_model
            if not target.select().where(field.rel_field == value).exists():
                error.field = field.name
                error.description = f"the {field.name!r} field refers to a row that does not exist"
                return


def _datetime_fields(model: type[Model]) -> tuple[str, ...]:
    """The names of ``model``'s date-time fields, found once per model (to_dict is hot) and
    again when a field is added (peewee then makes a new ``sorted_fields`` list)."""
    fields = model._meta.sorted_fields
    cached: tuple[Any, tuple[str, ...]] | None = model.__dict__.get("_microback_datetimes")
    if cached is None or cached[0] is not fields:
        names = tuple(f.name for f in fields if isinstance(f, peewee.DateTimeField))
        cached = (fields, names)
        model._microback_datetimes = cached  # type: ignore[attr-defined]
    return cached[1]


def _value_problem(field: peewee.Field, value: Any) -> str:
    """Say why the column of ``field`` cannot hold ``value`` ("" when it can, or may)."""
    if isinstance(value, peewee.Node):  # an SQL expression (count = Counter.count + 1)
        return ""
    if isinstance(field, peewee.CharField) and isinstance(value, str):
        limit = field.max_length
        return f"must be at most {limit} characters long" if limit and len(value) > limit else ""
    bits = _INTEGER_BITS.get(field.field_type)
    if bits is None:
        return ""
    database: Any = field.model._meta.database
    if isinstance(getattr(database, "obj", database), peewee.SqliteDatabase):
        bits = 64
    try:
        stored = field.db_value(value)  # type: ignore[no-untyped-call]
    except (TypeError, ValueError):  # peewee's int() of a list or an object
        stored = value
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if stored is None:  # a foreign key to a row not saved yet: peewee's to answer
        return ""
    if isinstance(stored, bool) or not isinstance(stored, int):
        return "must be an integer"
    return "" if low <= stored <= high else f"must be an integer from {low} to {high}"


def _primary_key_lookup(model: type[Model], pk: Any) -> _PrimaryKeyLookup | None:
    """The model's lookup for its current database, made from peewee's own query for ``pk``
    the first time; None when peewee must answer (no database yet, a composite key, a query
    of another shape)."""
    database: Any = model._meta.database
    if isinstance(database, peewee.DatabaseProxy):
        database = database.obj
    lookup: _PrimaryKeyLookup | None = model.__dict__.get("_microback_pk_lookup")
    if lookup is not None and lookup.database is database:
        return lookup
    key: Any = model._meta.primary_key
    if (
        database is None
        or not isinstance(key, peewee.Field)
        or isinstance(key, peewee.CompositeKey)
    ):
        return None
    query = model.select().where(key == pk).paginate(1, 1)
    sql, params = database.get_sql_context().sql(query).query()
    if not params or params[0] != key.db_value(pk):  # type: ignore[no-untyped-call]
        return None
    lookup = _PrimaryKeyLookup(database, key, sql, tuple(params[1:]), query)
    model._microback_pk_lookup = lookup  # type: ignore[attr-defined]
    return lookup
