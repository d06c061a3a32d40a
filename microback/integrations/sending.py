"""``WebhookSender``: signed webhooks out, delivered by jobs, with a delivery log and replay.

Each message is signed per the Standard Webhooks specification (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``), so receivers can use any of its libraries.
:meth:`WebhookSender.send` records a delivery and enqueues its job in the caller's
transaction: inside a request, the message exists if and only if the request committed. The
job POSTs the message; a 2xx is delivered, anything else (or no answer within ``timeout``) is
an attempt logged with its status or error and retried by the job queue with its back-off,
up to ``max_attempts``, after which the delivery is ``failed``. :meth:`WebhookSender.replay`
sends a delivery again with the same ``webhook-id``, as the spec asks, so a receiver that did
process it can recognise it.

Endpoint URLs usually come from the app's users, and the workers that call them sit inside
the app's network: by default a URL whose host is or resolves to an internal address
(loopback, private, link-local where clouds serve their metadata and credentials) is refused
(server-side request forgery). ``allow_internal_addresses=True`` lifts that, for endpoints
inside your own network.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import logging
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import peewee

from .outgoing import InternalAddressError, OutgoingError, is_internal, send
from .signatures import sign_standard

if TYPE_CHECKING:
    from ..jobs import Job, Jobs

__all__ = ["DeliveryFailed", "WebhookSender"]

logger = logging.getLogger("microback.webhooks")

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class DeliveryFailed(Exception):
    """An attempt that got no 2xx; raised in the job so that the queue retries it."""


class WebhookSender:
    """Send webhooks from ``jobs``' database: ``sender = WebhookSender(jobs)``.

    ``timeout`` (seconds, for connecting and for each read) is always set; ``max_attempts``
    per delivery (8 by default) with the back-off of ``jobs`` between them. Endpoints on
    internal addresses (loopback, private, link-local) are refused unless
    ``allow_internal_addresses=True``.
    """

    def __init__(
        self,
        jobs: Jobs,
        *,
        timeout: float = 10.0,
        max_attempts: int = 8,
        allow_internal_addresses: bool = False,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.jobs = jobs
        self.db = db = jobs.db
        self.timeout = float(timeout)
        self.allow_internal_addresses = allow_internal_addresses

        class WebhookEndpoint(db.Model):  # type: ignore[name-defined, misc]
            url = peewee.CharField(max_length=2000)
            secret = peewee.CharField(max_length=200)
            active = peewee.BooleanField(default=True)
            created_at = peewee.DoubleField()

            class Meta:
                table_name = "microback_webhook_endpoint"

        class WebhookDelivery(db.Model):  # type: ignore[name-defined, misc]
            endpoint = peewee.ForeignKeyField(WebhookEndpoint, backref="deliveries")
            message_id = peewee.CharField(max_length=64, unique=True)
            event_type = peewee.CharField(max_length=200)
            payload = peewee.TextField()
            state = peewee.CharField(max_length=10, default=PENDING)
            attempts = peewee.IntegerField(default=0)
            created_at = peewee.DoubleField()
            delivered_at = peewee.DoubleField(null=True)

            class Meta:
                table_name = "microback_webhook_delivery"

        class WebhookAttempt(db.Model):  # type: ignore[name-defined, misc]
            delivery = peewee.ForeignKeyField(WebhookDelivery, backref="log")
            job_id = peewee.CharField(max_length=36)
            attempt = peewee.IntegerField()
            at = peewee.DoubleField()
            status = peewee.IntegerField(null=True)
            error = peewee.TextField(null=True)
            response = peewee.TextField(null=True)  # the first bytes of the answer
            milliseconds = peewee.DoubleField()

            class Meta:
                table_name = "microback_webhook_attempt"

        self.Endpoint = WebhookEndpoint
        self.Delivery = WebhookDelivery
        self.Attempt = WebhookAttempt
        self._deliver = jobs.task(
            self._run, name="microback.webhooks.deliver", max_attempts=max_attempts
        )

    @property
    def models(self) -> list[type[peewee.Model]]:
        """The three tables, for ``db.create_tables(sender.models)``."""
        return [self.Endpoint, self.Delivery, self.Attempt]

    def add_endpoint(self, url: str, secret: str | None = None) -> Any:
        """Register a receiver's URL; its signing secret is made here unless given.

        A URL whose host is an internal IP address is refused here (unless
        ``allow_internal_addresses``); a host name is checked at each delivery, where it is
        resolved.
        """
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"a webhook endpoint is an http:// or https:// URL, not {url!r}")
        host = urlsplit(url).hostname or ""
        if not self.allow_internal_addresses and _is_internal_ip(host):
            raise ValueError(
                f"a webhook endpoint on an internal address ({host}) is refused: give a public "
                "host, or WebhookSender(jobs, allow_internal_addresses=True) for endpoints "
                "inside your own network"
            )
        secret = secret or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        sign_standard(secret, "check", 0, b"")  # a malformed secret fails here, not later
        return self.Endpoint.create(url=url, secret=secret, created_at=time.time())

    def send(self, endpoint: Any, event_type: str, data: Any) -> str:
        """Queue ``{"type", "timestamp", "data"}`` for ``endpoint``; return the message id.

        In the caller's transaction, as any enqueue: inside a request it is sent only if the
        request commits.
        """
        endpoint_id = getattr(endpoint, "id", endpoint)
        message_id = "msg_" + uuid.uuid4().hex
        now = time.time()
        payload = json.dumps(
            {
                "type": event_type,
                "timestamp": datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
                .isoformat()
                .replace("+00:00", "Z"),
                "data": data,
            },
            separators=(",", ":"),
        )
        with self.db.atomic():
            delivery = self.Delivery.create(
                endpoint=endpoint_id,
                message_id=message_id,
                event_type=event_type,
                payload=payload,
                created_at=now,
            )
            self._deliver.enqueue(delivery.id)
        return message_id

    def replay(self, delivery: Any) -> None:
        """Send a delivery again (same ``webhook-id``), whatever its state, as a new job."""
        delivery_id = getattr(delivery, "id", delivery)
        with self.db.atomic():
            updated = (
                self.Delivery.update(state=PENDING)
                .where(self.Delivery.id == delivery_id)
                .execute()
            )
            if not updated:
                raise LookupError(f"no webhook delivery {delivery_id!r}")
            self._deliver.enqueue(delivery_id)

    def deliveries(self, endpoint: Any, state: str | None = None) -> list[Any]:
        """An endpoint's deliveries, newest first (each with ``.log``, its attempts)."""
        Delivery = self.Delivery
        query = Delivery.select().where(Delivery.endpoint == getattr(endpoint, "id", endpoint))
        if state is not None:
            query = query.where(Delivery.state == state)
        return list(query.order_by(Delivery.id.desc()))

    # --- the job ------------------------------------------------------------------------------

    def _run(self, job: Job, delivery_id: int) -> None:
        delivery = self.Delivery.get_or_none(self.Delivery.id == delivery_id)
        if delivery is None:
            logger.warning("webhook delivery %s is gone; nothing to send", delivery_id)
            return
        if delivery.state == DELIVERED:
            return  # this job ran before, and its end was not recorded: not twice
        endpoint = delivery.endpoint
        body = delivery.payload.encode()
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_standard(endpoint.secret, delivery.message_id, stamp, body),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        answer = b""
        refused = False
        self.db.release()  # no connection held while waiting on the network
        try:
            response = send(
                "POST",
                endpoint.url,
                body=body,
                headers=headers,
                timeout=self.timeout,
                spans=self.jobs.app_extensions.get("tracing"),
                allow_internal_addresses=self.allow_internal_addresses,
            )
            status, answer = response.status, response.body[:1000]
            if not 200 <= status < 300:
                error = f"answered {status}"
        except InternalAddressError as exc:  # nothing was sent; trying again would not help
            error = f"{exc} (WebhookSender(jobs, allow_internal_addresses=True) allows them)"
            refused = True
        except OutgoingError as exc:
            error = str(exc)
        milliseconds = (time.perf_counter() - started) * 1000
        final = error is None or refused or job.attempt >= job.max_attempts
        with self.db.atomic():
            self.Attempt.create(
                delivery=delivery.id,
                job_id=job.id,
                attempt=job.attempt,
                at=time.time(),
                status=status,
                error=error,
                response=answer.decode("utf-8", "replace"),
                milliseconds=milliseconds,
            )
            self.Delivery.update(
                attempts=self.Delivery.attempts + 1,
                state=DELIVERED if error is None else (FAILED if final else PENDING),
                delivered_at=time.time() if error is None else None,
            ).where(self.Delivery.id == delivery.id).execute()
        if error is not None:
            logger.warning(
                "webhook %s to endpoint %s, attempt %d/%d: %s",
                delivery.message_id, endpoint.id, job.attempt, job.max_attempts, error,
            )  # fmt: skip
            if not refused:
                raise DeliveryFailed(error)


def _is_internal_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name: checked when it is resolved, at each delivery
    return is_internal(host)
