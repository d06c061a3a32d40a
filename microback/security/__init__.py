"""Security: passwords, sessions, users and login, API tokens, throttling, CSRF, CORS.

Everything here plugs into the app through its hooks; the app never imports this package.
Security headers and allowed hosts are in the core (``microback.security_headers``,
``microback.hosts``) because every app gets them, with no configuration.
"""

from .access import login_required as login_required
from .access import owned_by as owned_by
from .access import owned_or_404 as owned_or_404
from .access import requires_role as requires_role
from .access import requires_scope as requires_scope
from .auth import ANONYMOUS as ANONYMOUS
from .auth import AnonymousUser as AnonymousUser
from .auth import Auth as Auth
from .auth import normalize_email as normalize_email
from .cors import Cors as Cors
from .csrf import Csrf as Csrf
from .csrf import csrf_exempt as csrf_exempt
from .csrf import csrf_token as csrf_token
from .db_sessions import DatabaseSessions as DatabaseSessions
from .deploy import Finding as Finding
from .deploy import deployment_findings as deployment_findings
from .passwords import PasswordTooLong as PasswordTooLong
from .passwords import hash_password as hash_password
from .passwords import needs_rehash as needs_rehash
from .passwords import verify_password as verify_password
from .ratelimit import RateLimiter as RateLimiter
from .ratelimit import rate_limit as rate_limit
from .sessions import CookieSessions as CookieSessions
from .sessions import Session as Session
from .sessions import SessionStore as SessionStore
from .sessions import SessionTooLarge as SessionTooLarge
from .tokens import NewToken as NewToken
