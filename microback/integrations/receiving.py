"""``WebhookReceiver``: endpoints that verify a provider's webhooks and process each event once.

The endpoint does three things and answers: it verifies the signature over the raw body (a
failure is a bare 400, the reason goes to the log), records the event's id in
``microback_webhook_event`` and enqueues a job with the event, both in the request's
transaction. A redelivery (same id) finds the id recorded and is acknowledged with 200 and
nothing else, so the handler runs once per event even when the provider sends it again,
to another worker, at the same moment: the unique index makes the second insert wait for the
first's commit, then fail. The work itself happens in the job, so the provider gets its 2xx
within milliseconds and a failure of the work is retried by the job, not by the provider.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import peewee
from werkzeug.exceptions import BadRequest

from ..security.csrf import csrf_exempt
from .signatures import SignatureError, SignatureScheme

if TYPE_CHECKING:
    from ..app import App
    from ..http import Request
    from ..jobs import Job, Jobs

__all__ = ["WebhookEvent", "WebhookReceiver"]

logger = logging.getLogger("microback.webhooks")

MAX_ID_LENGTH = 200
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})
_Handler = Callable[["Job", "WebhookEvent"], Any]


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook, as its job receives it: ``def on_event(job, event): ...``."""

    source: str  # the receiver's name
    id: str  # the provider's event id (webhook-id, Stripe's event id, X-GitHub-Delivery)
    body: bytes  # exactly as received and signed
    headers: dict[str, str]  # the request's headers, for the event type (X-GitHub-Event...)

    def json(self) -> Any:
        """The body parsed as JSON."""
        import json

        return json.loads(self.body)


class WebhookReceiver:
    """Receive signed webhooks: ``webhooks = WebhookReceiver(app, jobs)``.

    ``keep`` is how long (seconds; 30 days by default) an event id is remembered: a
    redelivery within that time is recognised. Keep it longer than the signature's
    tolerance, and than the provider retries (Stripe: 3 days; GitHub signs no timestamp, so
    only the id stops a replay).
    """

    def __init__(self, app: App, jobs: Jobs, *, keep: float = 30 * 86400.0) -> None:
        if keep <= 0:
            raise ValueError("keep must be a positive number of seconds")
        self.app = app
        self.jobs = jobs
        self.db = jobs.db
        self.keep = float(keep)

        class WebhookEventId(self.db.Model):  # type: ignore[name-defined, misc]
            source = peewee.CharField(max_length=100)
            event_id = peewee.CharField(max_length=MAX_ID_LENGTH)
            received_at = peewee.DoubleField(index=True)

            class Meta:
                table_name = "microback_webhook_event"
                indexes = ((("source", "event_id"), True),)

        self.model = WebhookEventId
        app.extensions["webhook_receiver"] = self

    def endpoint(
        self,
        path: str,
        scheme: SignatureScheme,
        *,
        name: str | None = None,
        max_attempts: int | None = None,
    ) -> Callable[[_Handler], _Handler]:
        """Declare ``POST path`` verified by ``scheme``; the function runs as a job per event.

        ``@webhooks.endpoint("/webhooks/stripe", StripeSignature(secret))``. ``name`` (the
        path by default) is the event's ``source`` and scopes its ids.
        """
        source = name or path

        def declare(
            func: Callable[[Job, WebhookEvent], Any],
        ) -> Callable[[Job, WebhookEvent], Any]:
            task = self.jobs.task(func, name=f"webhook:{source}", max_attempts=max_attempts)

            @csrf_exempt  # a provider has no session and no CSRF token: the signature is its proof
            def receive(request: Request) -> tuple[dict[str, Any], int]:
                body = request.get_data(cache=True)
                try:
                    event_id = scheme.verify(dict(request.headers.items()), body)
                    if not 0 < len(event_id) <= MAX_ID_LENGTH:
                        raise SignatureError(
                            f"the event id is not 1 to {MAX_ID_LENGTH} characters"
                        )
                except SignatureError as refused:
                    logger.warning("webhook %s refused: %s", source, refused)
                    raise BadRequest("the webhook could not be verified") from None
                if not self._first_delivery(source, event_id):
                    logger.info(
                        "webhook %s event %s: a redelivery, acknowledged", source, event_id
                    )
                    return {"received": True, "duplicate": True}, 200
                # Not the credentials a provider may send: the job's arguments are stored.
                headers = {
                    k: v for k, v in request.headers.items() if k.lower() not in _CREDENTIALS
                }
                task.enqueue(WebhookEvent(source, event_id, body, headers))
                return {"received": True}, 200

            self.app.route(path, methods=["POST"], endpoint=f"webhook:{source}")(receive)
            return task  # type: ignore[no-any-return]

        return declare

    def _first_delivery(self, source: str, event_id: str) -> bool:
        model = self.model
        if random.random() < 0.01:  # noqa: S311 (not a secret: when to tidy up)
            self.purge()
        try:
            with self.db.atomic():  # a savepoint of the request's transaction
                model.insert(source=source, event_id=event_id, received_at=time.time()).execute()
        except peewee.IntegrityError:
            return False
        return True

    def purge(self, now: float | None = None) -> int:
        """Forget event ids older than ``keep``; return how many (requests do it now and then)."""
        now = time.time() if now is None else now
        return int(self.model.delete().where(self.model.received_at < now - self.keep).execute())
