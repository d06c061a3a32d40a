"""Security: passwords now; sessions, login, tokens, CSRF and headers are being built.

Everything here plugs into the app through its hooks; the app never imports this package.
"""

from .passwords import PasswordTooLong as PasswordTooLong
from .passwords import hash_password as hash_password
from .passwords import needs_rehash as needs_rehash
from .passwords import verify_password as verify_password
