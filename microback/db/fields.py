"""peewee's field classes, re-exported: ``fields.TextField()``, ``fields.ForeignKeyField(...)``.

Use them on ``db.Model`` subclasses exactly as peewee documents them; :func:`private` marks a
field that ``to_dict()`` must leave out (a password hash). One is microback's own:
:class:`DateTimeField`, which keeps every time in UTC on every database.
"""

from __future__ import annotations

import datetime
from typing import Any

import peewee
from peewee import AutoField as AutoField
from peewee import BigAutoField as BigAutoField
from peewee import BigBitField as BigBitField
from peewee import BigIntegerField as BigIntegerField
from peewee import BinaryUUIDField as BinaryUUIDField
from peewee import BitField as BitField
from peewee import BlobField as BlobField
from peewee import BooleanField as BooleanField
from peewee import CharField as CharField
from peewee import CompositeKey as CompositeKey
from peewee import DateField as DateField
from peewee import DecimalField as DecimalField
from peewee import DeferredForeignKey as DeferredForeignKey
from peewee import DoubleField as DoubleField
from peewee import Field as Field
from peewee import FixedCharField as FixedCharField
from peewee import FloatField as FloatField
from peewee import ForeignKeyField as ForeignKeyField
from peewee import IdentityField as IdentityField
from peewee import IntegerField as IntegerField
from peewee import IPField as IPField
from peewee import JSONField as JSONField
from peewee import ManyToManyField as ManyToManyField
from peewee import SmallIntegerField as SmallIntegerField
from peewee import TextField as TextField
from peewee import TimeField as TimeField
from peewee import TimestampField as TimestampField
from peewee import UUIDField as UUIDField

from .models import as_utc
from .models import private as private


class DateTimeField(peewee.DateTimeField):
    """A date and time, in UTC on every database, read back as an aware UTC ``datetime``.

    An aware value is converted to UTC before it is stored; a naive one is taken as UTC
    already. The column has no time zone (``TIMESTAMP``/``DATETIME``), so without this an
    aware value was kept with its offset by SQLite, shifted by the session's time zone by
    PostgreSQL, and stored as its wall-clock time by MariaDB. Microseconds are kept
    everywhere (MariaDB's column is ``DATETIME(6)``; its ``DATETIME`` drops them), so what
    ``to_dict()`` gives on create is what it gives on every later read.
    """

    def get_modifiers(self) -> list[int]:
        return [6]

    def db_value(self, value: Any) -> Any:
        value = super().db_value(value)  # type: ignore[no-untyped-call]  # parses a string
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value

    def python_value(self, value: Any) -> Any:
        value = super().python_value(value)  # type: ignore[no-untyped-call]
        return as_utc(value) if isinstance(value, datetime.datetime) else value
