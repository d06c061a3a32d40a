"""Typed application settings, read from keyword arguments and ``MICROBACK_*`` variables.

Settings are validated once, when the app is created, so a typo or a bad value stops the
process at start-up with a message naming the setting instead of failing on some later
request. Precedence is defaults < keyword arguments < environment: the code states what the
app wants, the deployment may override it without editing the code (twelve-factor style, and
the same rule ``DATABASE_URL`` follows).
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from . import header_defaults
from .hosts import UNIX_PEER, host_problem

__all__ = ["Settings", "SettingsError", "parse_bool", "parse_size"]

ENV_PREFIX = "MICROBACK_"
#: Set by ``microback serve --workers`` when no key is configured: a random key shared by its
#: workers, used only by apps that configure none.
SHARED_SECRET_VARIABLE = "MICROBACK_SHARED_SECRET_KEY"  # noqa: S105 (a name, not a key)


class SettingsError(ValueError):
    """A setting is unknown or has a value that cannot be used; the message names it."""


def parse_bool(raw: str) -> bool:
    """Read a boolean the way people write one in an environment variable."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be one of true/false, yes/no, on/off, 1/0")


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}


def parse_size(raw: str) -> int:
    """Read a byte count such as ``1048576``, ``512k`` or ``16MiB`` (units are powers of 1024)."""
    text = raw.strip().lower().replace(" ", "")
    digits = text.rstrip("kmgib")
    unit = text[len(digits) :]
    if not digits.isdigit() or unit not in _SIZE_UNITS:
        raise ValueError("must be a whole number of bytes, optionally with a unit (k, M, G)")
    return int(digits) * _SIZE_UNITS[unit]


def _parse_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("must be a whole number") from None


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _check_networks(values: tuple[str, ...]) -> None:
    for value in values:
        if value == UNIX_PEER:
            continue
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address, a network such as 10.0.0.0/8, or "
                f"{UNIX_PEER!r} (a proxy on a Unix socket)"
            ) from None


def _check_host_patterns(values: tuple[str, ...]) -> None:
    # A pattern that no valid Host can match would refuse every request silently.
    for value in values:
        pattern = value.strip()
        if pattern == "*":
            continue
        name = pattern.removeprefix(".")
        problem = host_problem(name)
        if problem is not None:
            raise ValueError(f"{value!r} is not a host name: {problem}")
        if ":" in name.rpartition("]")[2]:
            raise ValueError(
                f"{value!r} has a port; give the name alone (the port is not matched)"
            )
        if name.startswith("[") and pattern.startswith("."):
            raise ValueError(f"{value!r}: an IP address has no subdomains; drop the '.'")


def _format_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


@dataclasses.dataclass(frozen=True)
class _Spec:
    kind: type[Any]
    parse: Callable[[str], Any]
    help: str
    minimum: int | None = None
    validate: Callable[[Any], None] | None = None


def _setting(default: Any, spec: _Spec, **field: Any) -> Any:
    """A field of :class:`Settings` with how it is read and checked: the one settings table."""
    return dataclasses.field(default=default, metadata={"spec": spec}, **field)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The settings an :class:`~microback.App` runs with.

    Build them with :meth:`load`; the secret key is never shown by ``repr`` or in errors.
    """

    debug: bool = _setting(
        False, _Spec(bool, parse_bool, "show tracebacks in 500 responses (never in production)")
    )
    secret_key: str = _setting(
        "", _Spec(str, str, "key that signs sessions and tokens"), repr=False
    )
    #: Keys that signed before ``secret_key`` replaced them: session cookies and one-time links
    #: signed with one still verify (cookies are re-signed with the new key when next
    #: written), so a key can be rotated across instances without logging anybody out.
    previous_secret_keys: tuple[str, ...] = _setting(
        (),
        _Spec(tuple, _parse_list, "older keys that still verify session cookies and links"),
        repr=False,
    )
    #: The request-body limit. 1 MiB, like nginx's ``client_max_body_size``: big enough for any
    #: JSON API payload, small enough that a hostile client cannot fill memory.
    max_content_length: int = _setting(
        1024 * 1024, _Spec(int, parse_size, "largest request body accepted", minimum=0)
    )
    max_form_memory_size: int = _setting(
        500_000, _Spec(int, parse_size, "largest non-file form field", minimum=0)
    )
    max_form_parts: int = _setting(
        1000, _Spec(int, _parse_int, "most parts in a multipart form", minimum=1)
    )
    #: Requests for other hosts are refused (400), which stops Host-header attacks on
    #: password-reset links and cache poisoning. Production sets its domain here;
    #: ``".example.com"`` also allows subdomains, ``"*"`` allows anything.
    allowed_hosts: tuple[str, ...] = _setting(
        ("localhost", "127.0.0.1", "[::1]"),
        _Spec(
            tuple,
            _parse_list,
            "Host header values served; '*' for any",
            validate=_check_host_patterns,
        ),
    )
    #: Addresses (or networks) of the proxies in front, ``"unix"`` for one connected over a
    #: Unix socket; only their X-Forwarded-For and X-Forwarded-Proto are believed. Empty:
    #: nobody's are.
    trusted_proxies: tuple[str, ...] = _setting(
        (),
        _Spec(
            tuple,
            _parse_list,
            "proxies whose X-Forwarded-* headers are believed",
            validate=_check_networks,
        ),
    )
    #: Security headers added to every response that does not set its own; "" or 0 omits one.
    hsts_seconds: int = _setting(
        header_defaults.HSTS_SECONDS,
        _Spec(int, _parse_int, "Strict-Transport-Security max-age", minimum=0),
    )
    frame_options: str = _setting(
        header_defaults.FRAME_OPTIONS, _Spec(str, str, "X-Frame-Options (and CSP frame-ancestors)")
    )
    referrer_policy: str = _setting(
        header_defaults.REFERRER_POLICY, _Spec(str, str, "Referrer-Policy")
    )
    cross_origin_opener_policy: str = _setting(
        header_defaults.CROSS_ORIGIN_OPENER_POLICY, _Spec(str, str, "Cross-Origin-Opener-Policy")
    )
    #: ``microback serve`` refuses to start while a migration in ``migrations/`` beside the
    #: app's module is not applied to its database; off, it warns in one line and serves
    #: (requests that need the new schema fail). ``check --deploy`` asks for it on.
    require_migrations: bool = _setting(
        False,
        _Spec(bool, parse_bool, "refuse to serve while a database migration is not applied"),
    )
    #: True when no secret key was configured and a random one was generated at start-up.
    secret_key_generated: bool = dataclasses.field(default=False, compare=False)

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Validate keyword settings, apply ``MICROBACK_*`` variables over them, fill the rest."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, value in overrides.items():
            spec = _spec_for(name, f"unknown setting {name!r}")
            values[name] = _check_type(name, spec, value)
        for name, spec in _SPECS.items():
            variable = ENV_PREFIX + name.upper()
            if variable in environ:
                raw = environ[variable]
                try:
                    parsed = spec.parse(raw)
                except ValueError as exc:
                    shown = "(hidden)" if name in _HIDDEN else repr(raw)
                    raise SettingsError(f"invalid {variable}={shown}: {exc}") from None
                values[name] = _check_type(variable, spec, parsed)
        if not values.get("secret_key"):
            if "secret_key" in values:
                source = (
                    "MICROBACK_SECRET_KEY"
                    if ENV_PREFIX + "SECRET_KEY" in environ
                    else "secret_key"
                )
                raise SettingsError(f"{source} is empty; set a long random value or leave it out")
            # Nothing is logged here: an app that signs nothing needs no key, and `microback
            # routes` or `db` need none either. `microback serve` warns when the app signs
            # with this key (App.secret_key_for); `check --deploy` reports it.
            values["secret_key_generated"] = True
            # `microback serve --workers` made one key for all its workers; a key set in code
            # or MICROBACK_SECRET_KEY wins over it.
            shared = environ.get(SHARED_SECRET_VARIABLE)
            values["secret_key"] = shared or secrets.token_urlsafe(32)
        return cls(**values)

    def describe(self, name: str) -> str:
        """Give a human-readable value for messages: sizes with units, the secret hidden."""
        if name in _HIDDEN:
            return "(hidden)"
        value = getattr(self, name)
        return _format_size(value) if _SPECS[name].parse is parse_size else repr(value)


#: Settings whose values are never shown, in messages or in ``repr``.
_HIDDEN = frozenset({"secret_key", "previous_secret_keys"})

#: Each setting's name and how it is read (from the fields of Settings, where they are written).
_SPECS: dict[str, _Spec] = {
    field.name: field.metadata["spec"]
    for field in dataclasses.fields(Settings)
    if "spec" in field.metadata
}


def _spec_for(name: str, problem: str) -> _Spec:
    if name in _SPECS:
        return _SPECS[name]
    close = difflib.get_close_matches(name, _SPECS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known settings: {', '.join(_SPECS)}"
    raise SettingsError(problem + hint)


def _check_type(label: str, spec: _Spec, value: Any) -> Any:
    if spec.kind is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise SettingsError(f"setting {label} must be a list of strings, such as ['a', 'b']")
        if not all(isinstance(item, str) for item in value):
            raise SettingsError(f"setting {label} must contain only strings")
        value = tuple(value)
        if spec.validate is not None:
            try:
                spec.validate(value)
            except ValueError as exc:
                raise SettingsError(f"setting {label}: {exc}") from None
        return value
    # bool is an int subclass: max_content_length=True is a mistake, not 1 byte.
    if not isinstance(value, spec.kind) or (spec.kind is int and isinstance(value, bool)):
        raise SettingsError(
            f"setting {label} must be {spec.kind.__name__}, got {type(value).__name__}"
        )
    if spec.minimum is not None and value < spec.minimum:
        raise SettingsError(f"setting {label} must be at least {spec.minimum}, got {value}")
    return value
