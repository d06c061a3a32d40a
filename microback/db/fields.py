"""peewee's field classes, re-exported: ``fields.TextField()``, ``fields.ForeignKeyField(...)``.

Use them on ``db.Model`` subclasses exactly as peewee documents them; :func:`private` marks a
field that ``to_dict()`` must leave out (a password hash).
"""

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
from peewee import DateTimeField as DateTimeField
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

from .models import private as private
