"""Password hashing with bcrypt, safe for any password length and off the event loop.

bcrypt reads at most 72 bytes: bcrypt 5 raises on longer input and older versions silently
ignore the rest, so "correct horse ... A" and "correct horse ... B" could be one password.
Like Django's ``BCryptSHA256PasswordHasher``, the password is first reduced with SHA-256
(base64-encoded: 44 bytes, no NUL) and bcrypt hashes that, so every byte counts and any
length up to :data:`MAX_PASSWORD_BYTES` works. The stored form is
``bcrypt_sha256$<bcrypt hash>``.
"""

from __future__ import annotations

import base64
import functools
import hashlib

import bcrypt
from werkzeug.exceptions import BadRequest

from ..blocking import run_blocking

__all__ = [
    "DEFAULT_ROUNDS",
    "MAX_PASSWORD_BYTES",
    "MIN_ROUNDS",
    "PasswordTooLong",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

#: Cost 12 takes about 0.25-0.35 s on a current server core: slow for an attacker with a
#: stolen table, tolerable for one login.
DEFAULT_ROUNDS = 12
MIN_ROUNDS = 10
#: Far beyond any passphrase; longer input is refused before hashing, so a megabyte
#: "password" costs nothing but the upload.
MAX_PASSWORD_BYTES = 4096
PREFIX = "bcrypt_sha256$"


class PasswordTooLong(BadRequest, ValueError):
    """A password over :data:`MAX_PASSWORD_BYTES` bytes (UTF-8); answered as 400."""

    def __init__(self) -> None:
        super().__init__(f"the password is longer than {MAX_PASSWORD_BYTES} bytes")


def _prehash(password: str) -> bytes:
    if not isinstance(password, str):
        raise TypeError(f"a password must be str, got {type(password).__name__}")
    raw = password.encode("utf-8")
    if len(raw) > MAX_PASSWORD_BYTES:
        raise PasswordTooLong()
    return base64.b64encode(hashlib.sha256(raw).digest())


def _check_rounds(rounds: int) -> None:
    if not MIN_ROUNDS <= rounds <= 31:
        raise ValueError(f"bcrypt rounds must be from {MIN_ROUNDS} to 31, got {rounds}")


def hash_password(password: str, *, rounds: int = DEFAULT_ROUNDS) -> str:
    """Hash ``password`` for storage; runs in gevent's thread pool under gevent."""
    _check_rounds(rounds)
    hashed = run_blocking(bcrypt.hashpw, _prehash(password), bcrypt.gensalt(rounds))
    return PREFIX + hashed.decode("ascii")


@functools.lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> bytes:
    return bcrypt.hashpw(b"microback-dummy-password", bcrypt.gensalt(rounds))


def verify_password(password: str, stored: str | None, *, rounds: int = DEFAULT_ROUNDS) -> bool:
    """Check ``password`` against a stored hash, in constant time.

    Pass ``stored=None`` for an unknown account: the password is then checked against a
    dummy hash of the same cost, so the response time does not tell an attacker whether
    the account exists. A malformed stored hash is a mismatch, not an error.
    """
    candidate = _prehash(password)
    if stored is None or not stored.startswith(PREFIX):
        dummy = run_blocking(_dummy_hash, rounds)
        run_blocking(bcrypt.checkpw, candidate, dummy)
        return False
    hashed = stored[len(PREFIX) :].encode("ascii", "replace")
    try:
        return run_blocking(bcrypt.checkpw, candidate, hashed)
    except ValueError:  # not a bcrypt hash ("Invalid salt")
        return False


def needs_rehash(stored: str, *, rounds: int = DEFAULT_ROUNDS) -> bool:
    """Tell whether ``stored`` was made with another cost (or scheme) and should be redone.

    Call it after a successful :func:`verify_password` and store a fresh hash if true.
    """
    _check_rounds(rounds)
    if not stored.startswith(PREFIX):
        return True
    parts = stored[len(PREFIX) :].split("$")
    return len(parts) < 4 or parts[2] != f"{rounds:02d}"
