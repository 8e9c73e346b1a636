"""Moved to :mod:`protean_celery.worker.pool`; this path stays for the ``worker_pool`` setting.

``protean_celery.pool:TaskPool`` was documented as the ``worker_pool`` default,
so settings that name it keep working.
"""

from protean_celery.worker.pool import AsynPool, TaskPool

__all__ = ["AsynPool", "TaskPool"]
