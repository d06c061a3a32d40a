"""microback.integrations: talking to other systems safely.

- :class:`Idempotency`: a retried POST with the same ``Idempotency-Key`` runs once
  (docs/idempotency.md).
"""

from .idempotency import Idempotency as Idempotency
from .idempotency import default_scope as default_scope
