"""Webhook signature schemes: Standard Webhooks, Stripe's and GitHub's, from their public specs.

Each checks an HMAC-SHA256 over the exact raw body (and, where the scheme signs one, a
timestamp that must be within ``tolerance`` seconds of now, so a captured request cannot be
replayed later), compares with :func:`hmac.compare_digest`, and gives the event's id, by which
a redelivery is recognised. A failure raises :class:`SignatureError` with the reason, for the
log only: the sender gets a bare 400.

- Standard Webhooks (https://www.standardwebhooks.com; its spec is spec/standard-webhooks.md
  in github.com/standard-webhooks/standard-webhooks): headers
  ``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` (``v1,<base64>`` entries
  separated by spaces); the signed content is ``id.timestamp.body``; the secret is
  ``whsec_`` and base64.
- Stripe (docs.stripe.com/webhooks#verify-manually): ``Stripe-Signature: t=...,v1=<hex>``; the
  signed content is ``t.body``, keyed by the endpoint secret as it is written; the event id
  is the body's ``id``.
- GitHub (docs.github.com, "Validating webhook deliveries"): ``X-Hub-Signature-256:
  sha256=<hex>`` over the body; the id is ``X-GitHub-Delivery``. GitHub signs no timestamp,
  so only the id protects against a replay (keep ids at least as long as a replay matters).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

__all__ = [
    "GitHubSignature",
    "SignatureError",
    "SignatureScheme",
    "StandardWebhooks",
    "StripeSignature",
    "sign_standard",
]


class SignatureError(ValueError):
    """A webhook that must not be believed; the message says why (for the log)."""


class SignatureScheme(Protocol):
    """Verifies one provider's webhooks: gives the event id, or raises :class:`SignatureError`."""

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
        """Check the signature of ``body``; return the event's id."""
        ...


def _secrets(secret: str | Sequence[str]) -> list[str]:
    # Several secrets: the old and the new one while a secret is being rotated.
    found = [secret] if isinstance(secret, str) else list(secret)
    if not found or not all(found):
        raise ValueError("give the webhook secret (or a list of them, while rotating)")
    return found


def _hmac(key: bytes, content: bytes) -> bytes:
    return hmac.new(key, content, hashlib.sha256).digest()


def _any_matches(expected: Iterable[bytes], given: Iterable[bytes]) -> bool:
    # Compare every pair, each in constant time: the time taken says nothing of which matched.
    matched = False
    for mine in expected:
        for theirs in given:
            matched |= hmac.compare_digest(mine, theirs)
    return matched


def _header(headers: Mapping[str, str], name: str) -> str:
    # Header names are case-insensitive: a plain dict may spell them either way.
    lowered = name.lower()
    value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    if not value:
        raise SignatureError(f"the {name} header is missing")
    return value


def _timestamp(text: str, tolerance: float, now: float | None) -> int:
    try:
        stamp = int(text)
    except ValueError:
        raise SignatureError(f"the timestamp {text[:20]!r} is not a number of seconds") from None
    now = time.time() if now is None else now
    if abs(now - stamp) > tolerance:
        raise SignatureError(
            f"the timestamp is {now - stamp:+.0f} s from now, outside the tolerance of "
            f"{tolerance:.0f} s (a replay, or a clock that is off)"
        )
    return stamp


def standard_key(secret: str) -> bytes:
    """The key of a Standard Webhooks secret: the base64 after ``whsec_``."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("a Standard Webhooks secret is 'whsec_' and base64") from None


def sign_standard(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for ``body`` (``v1,<base64>``), as a sender makes it."""
    content = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(_hmac(standard_key(secret), content)).decode()


class StandardWebhooks:
    """The Standard Webhooks scheme: ``StandardWebhooks("whsec_...", tolerance=300)``."""

    def __init__(self, secret: str | Sequence[str], *, tolerance: float = 300.0) -> None:
        self.keys = [standard_key(s) for s in _secrets(secret)]
        self.tolerance = tolerance

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
        """Check ``webhook-signature``; return ``webhook-id``."""
        message_id = _header(headers, "webhook-id")
        stamp = _header(headers, "webhook-timestamp")
        given = []
        for entry in _header(headers, "webhook-signature").split():
            version, _, signature = entry.partition(",")
            if version == "v1":
                try:
                    given.append(base64.b64decode(signature, validate=True))
                except binascii.Error:
                    continue
        if not given:
            raise SignatureError("the webhook-signature header has no v1 signature")
        _timestamp(stamp, self.tolerance, now)
        content = f"{message_id}.{stamp}.".encode() + body
        if not _any_matches((_hmac(key, content) for key in self.keys), given):
            raise SignatureError("no v1 signature in webhook-signature matches the body")
        return message_id


class StripeSignature:
    """Stripe's ``Stripe-Signature`` scheme: ``StripeSignature("whsec_...", tolerance=300)``."""

    def __init__(self, secret: str | Sequence[str], *, tolerance: float = 300.0) -> None:
        self.keys = [s.encode() for s in _secrets(secret)]
        self.tolerance = tolerance

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
        """Check ``Stripe-Signature``; return the event's ``id`` from the body."""
        stamp, given = None, []
        for item in _header(headers, "Stripe-Signature").split(","):
            name, _, value = item.strip().partition("=")
            if name == "t":
                stamp = value
            elif name == "v1":
                try:
                    given.append(bytes.fromhex(value))
                except ValueError:
                    continue
        if stamp is None or not given:
            raise SignatureError("the Stripe-Signature header has no t= or no v1= signature")
        _timestamp(stamp, self.tolerance, now)
        content = stamp.encode() + b"." + body
        if not _any_matches((_hmac(key, content) for key in self.keys), given):
            raise SignatureError("no v1 signature in Stripe-Signature matches the body")
        try:
            event_id = json.loads(body)["id"]
        except (ValueError, TypeError, KeyError):
            raise SignatureError("the signed body is not a Stripe event with an id") from None
        if not isinstance(event_id, str):
            raise SignatureError("the event's id is not a string")
        return event_id


class GitHubSignature:
    """GitHub's ``X-Hub-Signature-256`` scheme: ``GitHubSignature("the webhook secret")``."""

    def __init__(self, secret: str | Sequence[str]) -> None:
        self.keys = [s.encode() for s in _secrets(secret)]

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
        """Check ``X-Hub-Signature-256``; return ``X-GitHub-Delivery``."""
        algorithm, _, signature = _header(headers, "X-Hub-Signature-256").partition("=")
        try:
            given = bytes.fromhex(signature)
        except ValueError:
            given = b""
        if algorithm != "sha256" or not given:
            raise SignatureError("X-Hub-Signature-256 is not 'sha256=' and a hex digest")
        if not _any_matches((_hmac(key, body) for key in self.keys), [given]):
            raise SignatureError("X-Hub-Signature-256 does not match the body")
        return _header(headers, "X-GitHub-Delivery")
