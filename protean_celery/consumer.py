"""Moved to :mod:`protean_celery.worker.consumer`; this path stays for the ``worker_consumer`` setting.

``protean_celery.consumer:Consumer`` was documented as the ``worker_consumer``
default (and as the class to subclass), so settings and subclasses that name it
keep working.
"""

from protean_celery.worker.consumer import NO_TASK, Consumer, connect, park, raw_body, task_argument

__all__ = ["Consumer", "connect", "park", "raw_body", "task_argument", "NO_TASK"]
