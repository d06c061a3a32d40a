"""``post_json``-style outgoing HTTP with the timeout always set, on the standard library.

Under ``microback serve`` and ``microback worker`` gevent has patched ``socket`` and ``ssl``
before anything is imported, so ``http.client`` waits cooperatively: a slow partner holds one
greenlet, not the process. No redirect is followed (a webhook or payment call that is
redirected is an error to see, not to follow) and at most ``max_body`` bytes of the answer are
read, so a misbehaving server can neither stall nor flood the caller.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["OutgoingError", "OutgoingResponse", "send"]

USER_AGENT = "microback"


class OutgoingError(OSError):
    """The request could not be made or got no answer (refused, timed out, bad URL)."""


@dataclass(frozen=True)
class OutgoingResponse:
    """What came back: the status, the headers (lower-case names) and the first bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


def send(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
    max_body: int = 64 * 1024,
    context: ssl.SSLContext | None = None,
    spans: Any = None,
) -> OutgoingResponse:
    """Send one request and read its answer, within ``timeout`` seconds for each socket wait.

    ``timeout`` has no default on purpose: a call without one can wait for ever. Raises
    :class:`OutgoingError` when no answer came; any status is a response (check it). With
    *spans* (the app's ``microback.tracing.Tracing``) the call is a client span whose context
    goes with the request (``traceparent``).
    """
    if spans is None:
        return _send(method, url, body, headers or {}, timeout, max_body, context)
    headers = dict(headers or {})
    with spans.outgoing(method, url, headers) as span:
        response = _send(method, url, body, headers, timeout, max_body, context)
        span.set_attribute("http.response.status_code", response.status)
        return response


def _send(
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    timeout: float,
    max_body: int,
    context: ssl.SSLContext | None,
) -> OutgoingResponse:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutgoingError(f"cannot send to {url!r}: only http:// and https:// URLs")
    if timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = {"User-Agent": USER_AGENT, **headers}
    try:
        connection.request(method, target, body=body, headers=sent)
        answer = connection.getresponse()
        data = answer.read(max_body)
        return OutgoingResponse(
            answer.status, {k.lower(): v for k, v in answer.getheaders()}, data
        )
    except (OSError, http.client.HTTPException) as exc:
        # The host only: a URL's user, password or query may be secrets, and logs outlive them.
        where = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        raise OutgoingError(f"{method} {where}: {exc or type(exc).__name__}") from exc
    finally:
        connection.close()
