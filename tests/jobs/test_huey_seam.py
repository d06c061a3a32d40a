"""The one private name of huey that microback/jobs/_huey.py uses (issue 13)."""

from __future__ import annotations

import huey
from huey.storage import BlackHoleStorage

from microback.jobs._huey import task_name


def test_task_name_is_the_name_huey_stores_and_finds_the_task_by():
    queue = huey.Huey("seam", storage_class=BlackHoleStorage)

    def send_receipt(order_id: int) -> None:
        pass

    named = queue.task(name="receipts.send")(send_receipt)
    unnamed = queue.task()(lambda: None)
    assert task_name(queue, named) == f"{__name__}.receipts.send"
    assert task_name(queue, unnamed) == f"{__name__}.<lambda>"
    # The name is what a serialized job carries, and what huey finds the function by again.
    message = queue.serializer.deserialize(queue.serialize_task(named.s(42)))
    assert message.name == task_name(queue, named)
    task = queue.deserialize_task(queue.serialize_task(named.s(42)))
    assert isinstance(task, named.task_class)
    assert task.args == (42,)
