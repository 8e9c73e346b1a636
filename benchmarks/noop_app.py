"""A Celery app with one task that does nothing, under protean-celery's delivery settings.

Used by ``benchmarks/celery_floor.py`` to measure what Celery itself costs per task.
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery("noop", broker=os.environ.get("CELERY_BROKER_URL", "memory://"))
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
)


@app.task(name="noop")
def noop(payload: dict) -> None:
    """Nothing: the message's life around a handler, without the handler."""
