"""Durable, cancellable deadlines: send a command or event later, unless cancelled first.

::

    from datetime import timedelta
    from protean_celery import deadlines

    # in a process manager's handler: written in its Unit of Work
    deadlines.schedule(TimeOutPayment(order_id=event.order_id), after=timedelta(minutes=15),
                       key=f"payment-{event.order_id}")
    # in a later transition
    deadlines.cancel(f"payment-{event.order_id}")

* :mod:`~protean_celery.deadlines.api`: ``schedule`` and ``cancel``, in the handler's Unit of Work;
* :mod:`~protean_celery.deadlines.table`: the table (default database) and its store, for the CLI;
* :mod:`~protean_celery.deadlines.firing`: the beat task that fires due deadlines exactly once.

See ``docs/guides/deadlines.md``.
"""

from protean_celery.deadlines.api import cancel, schedule
from protean_celery.deadlines.firing import FireReport, fire_due
from protean_celery.deadlines.table import Deadline, DeadlineStore, deadlines_table

__all__ = ["schedule", "cancel", "Deadline", "DeadlineStore", "FireReport", "fire_due", "deadlines_table"]
