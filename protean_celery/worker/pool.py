"""Celery's prefork pool, without a crash when the worker reconnects just as a child exits (I/O).

With ``worker_cancel_long_running_tasks_on_connection_loss`` (protean-celery's
default), a lost broker connection terminates the pool children running
late-acknowledged tasks. When the consumer reconnects it registers every child
of the pool with the event loop again; a child that has exited but is not yet
replaced has no sentinel file descriptor any more (Celery set it to ``None``
when it stopped tracking it), ``Hub.add`` raises ``ValueError('file descriptor
is None')``, and Celery stops the worker as an "Unrecoverable error". A chaos
run with eight Redis kills hit exactly that. :class:`TaskPool` (set as the
``worker_pool`` setting by ``ProteanCelery``, so ``-P prefork`` uses it too)
skips such a child: the pool's own maintenance replaces it a moment later.

Upstream: celery/celery#9250 (a reconnect with
``worker_cancel_long_running_tasks_on_connection_loss`` stops the worker on an
exited child's missing descriptor); Celery's own guard for the untracking side
is celery/celery#10086. The trap is reproduced in ``tests/unit/test_worker_pool.py``
and, with real Redis restarts, ``tests/integration/test_broker_restarts.py``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.concurrency import asynpool, prefork

__all__ = ["AsynPool", "TaskPool"]

logger = logging.getLogger(__name__)


class AsynPool(asynpool.AsynPool):
    """Celery's asynchronous prefork pool, tracking only children that still have a sentinel."""

    def _track_child_process(self, proc: Any, hub: Any) -> None:
        if getattr(proc, "_sentinel_poll", 0) is None:  # untracked: it exited and awaits replacement
            logger.info("pool child %s has exited; not watched again, the pool replaces it", proc.pid)
            return
        super()._track_child_process(proc, hub)


class TaskPool(prefork.TaskPool):
    """Celery's prefork task pool on :class:`AsynPool`."""

    Pool = AsynPool
