"""Security: passwords, signed-cookie sessions, CSRF, CORS and deployment checks.

Everything here plugs into the app through its hooks; the app never imports this package.
"""

from .cors import Cors as Cors
from .csrf import Csrf as Csrf
from .csrf import csrf_exempt as csrf_exempt
from .csrf import csrf_token as csrf_token
from .deploy import Finding as Finding
from .deploy import deployment_findings as deployment_findings
from .passwords import PasswordTooLong as PasswordTooLong
from .passwords import hash_password as hash_password
from .passwords import needs_rehash as needs_rehash
from .passwords import verify_password as verify_password
from .sessions import CookieSessions as CookieSessions
from .sessions import Session as Session
from .sessions import SessionTooLarge as SessionTooLarge
