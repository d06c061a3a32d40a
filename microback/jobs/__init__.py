"""microback.jobs: durable background jobs in the app's database, on huey's engine.

::

    from microback.jobs import Jobs

    jobs = Jobs(app, db)

    @jobs.task
    def send_receipt(job, order_id):
        ...

    send_receipt.enqueue(order.id)      # in a handler: committed with the request, or not at all

``microback worker module:app`` runs them; see docs/jobs.md.
"""

from .queue import Enqueued as Enqueued
from .queue import Job as Job
from .queue import JobFunction as JobFunction
from .queue import Jobs as Jobs
from .queue import crontab as crontab
from .redis import RedisJobs as RedisJobs
from .store import JobRecord as JobRecord
