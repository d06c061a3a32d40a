"""microback.integrations: talking to other systems safely.

- :class:`Idempotency`: a retried POST with the same ``Idempotency-Key`` runs once
  (docs/idempotency.md).
- :class:`WebhookReceiver` with :class:`StandardWebhooks`, :class:`StripeSignature` and
  :class:`GitHubSignature`: signed webhooks in, each event processed once (docs/webhooks.md).
- :class:`WebhookSender`: signed webhooks out, by jobs, with a delivery log and replay.
- :func:`send`: an outgoing HTTP request with its timeout always set (docs/integrations.md).
"""

from .idempotency import Idempotency as Idempotency
from .idempotency import default_scope as default_scope
from .outgoing import InternalAddressError as InternalAddressError
from .outgoing import OutgoingError as OutgoingError
from .outgoing import OutgoingResponse as OutgoingResponse
from .outgoing import send as send
from .receiving import WebhookEvent as WebhookEvent
from .receiving import WebhookReceiver as WebhookReceiver
from .sending import DeliveryFailed as DeliveryFailed
from .sending import WebhookSender as WebhookSender
from .signatures import GitHubSignature as GitHubSignature
from .signatures import SignatureError as SignatureError
from .signatures import SignatureScheme as SignatureScheme
from .signatures import StandardWebhooks as StandardWebhooks
from .signatures import StripeSignature as StripeSignature
from .signatures import sign_standard as sign_standard
