"""microback.db: models on peewee, over SQLite, PostgreSQL or MariaDB/MySQL.

::

    from microback.db import Database, fields

    db = Database(app, "sqlite:///notes.db")      # DATABASE_URL overrides the URL

    class Note(db.Model):
        text = fields.TextField()

The app never imports this package; a Database plugs into it through the app's hooks.
"""

from . import fields as fields
from .backends import Options as Options
from .database import Atomic as Atomic
from .database import Database as Database
from .database import non_atomic as non_atomic
from .errors import ConstraintViolation as ConstraintViolation
from .errors import DatabaseConfigError as DatabaseConfigError
from .errors import DatabaseNotWritable as DatabaseNotWritable
from .errors import DatabaseUnavailable as DatabaseUnavailable
from .errors import DatabaseUnreachableError as DatabaseUnreachableError
from .errors import InvalidValue as InvalidValue
from .errors import MissingReference as MissingReference
from .errors import NotNullViolation as NotNullViolation
from .errors import PoolExhausted as PoolExhausted
from .errors import StillReferenced as StillReferenced
from .errors import UniqueViolation as UniqueViolation
from .models import Model as Model
from .models import private as private
from .pagination import Page as Page
from .pagination import paginate as paginate
