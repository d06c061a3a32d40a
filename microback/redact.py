"""Mask the secrets a URL carries before it is logged or shown: one helper for every URL.

A URL holds secrets in two places: the password of its user part (``postgresql://app:s3cret@``)
and query values (``?password=...`` in a database URL, ``?token=...`` or ``?signature=...`` in
a request target). Logs outlive requests and are read by more people than the secrets are
meant for, so every URL the framework or its server writes goes through :func:`mask_url` (or a
:class:`Masker` made with the words an operator configured).

A query parameter is secret when one of the words of its name ends with a secret word:
``access_token``, ``apiKey``, ``X-Amz-Signature``, ``client_secret`` and ``passcode`` are
masked; ``keyword`` and ``page`` are not. The value becomes ``***``; the name stays, so a log
reader still sees which parameter was sent. This module does no I/O and imports nothing else
of microback, so every layer can use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

__all__ = ["DEFAULT_SECRET_WORDS", "MASK", "Masker", "mask_url"]

#: Query-parameter words masked unless configured otherwise.
DEFAULT_SECRET_WORDS = ("token", "password", "passwd", "secret", "key", "signature", "code")
#: What a secret is replaced with.
MASK = "***"

#: Bound on the parameter names whose verdict is remembered (clients may send any names).
_REMEMBERED_NAMES = 1024
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORDS = re.compile(r"[a-z0-9]+")


class Masker:
    """Mask passwords and secret-looking query values in URLs, for a set of secret words."""

    def __init__(self, words: Iterable[str] = DEFAULT_SECRET_WORDS) -> None:
        self.words = tuple(word.strip().lower() for word in words if word.strip())
        for word in self.words:
            if not _WORDS.fullmatch(word):
                raise ValueError(
                    f"a secret query word is letters and digits only (e.g. token), not {word!r}"
                )
        self._verdicts: dict[str, bool] = {}

    def secret_name(self, name: str) -> bool:
        """Tell whether the query parameter *name* (as sent, percent-encoded) looks secret."""
        verdict = self._verdicts.get(name)
        if verdict is None:
            words = _WORDS.findall(_CAMEL.sub(r"\1_\2", unquote_plus(name)).lower())
            verdict = any(word.endswith(self.words) for word in words)
            if len(self._verdicts) < _REMEMBERED_NAMES:
                self._verdicts[name] = verdict
        return verdict

    def query(self, query: str) -> str:
        """Give *query* (``a=1&token=x``) with the values of secret parameters masked."""
        parts = query.split("&")
        changed = False
        for index, part in enumerate(parts):
            name, equals, value = part.partition("=")
            if equals and value and self.secret_name(name):
                parts[index] = f"{name}={MASK}"
                changed = True
        return "&".join(parts) if changed else query

    def target(self, target: str) -> str:
        """Give a request target (``/path?query``, as sent) with its secret query values masked."""
        path, question, query = target.partition("?")
        if not question:
            return target
        query, hash_, fragment = query.partition("#")
        return f"{path}?{self.query(query)}{hash_}{fragment}"

    def url(self, url: str) -> str:
        """Give *url* with its password and its secret query values masked."""
        try:
            parts = urlsplit(url)
            has_password = parts.password is not None
            if has_password:
                user = quote(parts.username or "", safe="")
                host = parts.hostname or ""
                if ":" in host:
                    host = f"[{host}]"
                port = f":{parts.port}" if parts.port else ""
                parts = parts._replace(netloc=f"{user}:{MASK}@{host}{port}")
            query = self.query(parts.query) if parts.query else ""
            if query == parts.query and not has_password:
                return url  # as given, not as urlunsplit would rewrite it
            return urlunsplit(parts._replace(query=query))
        except ValueError:
            # Unparseable (a bad port, say): hide everything between '://' and '@', and the
            # query as best it can be found.
            scheme, separator, rest = url.partition("://")
            _, at, host = rest.rpartition("@")
            return self.target(f"{scheme}{separator}{MASK}@{host}" if at else url)


_DEFAULT = Masker()


def mask_url(url: str) -> str:
    """Give *url* with its password and secret query values (:data:`DEFAULT_SECRET_WORDS`) masked.

    >>> mask_url("postgresql://app:s3cret@db.example/notes?sslmode=require&password=x")
    'postgresql://app:***@db.example/notes?sslmode=require&password=***'
    """
    return _DEFAULT.url(url)
