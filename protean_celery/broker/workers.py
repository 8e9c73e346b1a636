"""What the workers say they hold, through Celery's remote control (I/O).

A broker that cannot show what its consumers hold (AMQP, memory) is searched by
asking the workers instead: ``query_task`` for given task ids (active, reserved
or scheduled), ``inspect active`` and ``reserved`` for a count. Redis needs them
only to tell a live holder from a dead one before reclaiming.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from protean_celery.broker.base import Sighting

__all__ = ["consumed_queues", "count_held", "held_by_nodes", "held_by_workers", "search_workers"]

logger = logging.getLogger(__name__)


def held_by_workers(celery: Any, ids: Iterable[str], timeout: float) -> tuple[set[str], int]:
    """The task ids among ``ids`` that a worker reports as active, reserved or scheduled (``query_task``).

    Returns those ids and how many workers answered (0 when asking failed: the broker hiccuped).
    """
    held, nodes = held_by_nodes(celery, ids, timeout)
    return held, len(nodes)


def held_by_nodes(celery: Any, ids: Iterable[str], timeout: float) -> tuple[set[str], set[str]]:
    """As :func:`held_by_workers`, with the names of the nodes that answered (none when asking failed)."""
    try:
        replies = celery.control.inspect(timeout=timeout).query_task(*sorted(ids)) or {}
    except Exception as exc:  # treat as no answer
        logger.warning("redelivery sweep: asking the workers failed: %r", exc)
        return set(), set()
    return {str(task_id) for tasks in replies.values() for task_id in (tasks or {})}, {str(node) for node in replies}


def consumed_queues(celery: Any, timeout: float) -> set[str] | None:
    """The names of the queues the running workers consume (``inspect active_queues``).

    Returns:
        ``None`` when no worker answered within ``timeout`` seconds or asking failed.
    """
    try:
        replies = celery.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:  # no answer
        logger.warning("asking the workers for their queues failed: %r", exc)
        return None
    if not replies:
        return None
    return {str(queue.get("name")) for queues in replies.values() for queue in (queues or [])}


def count_held(celery: Any, ignore: Collection[str], timeout: float) -> int:
    """Tasks the workers are running or hold reserved, leaving out the task names in ``ignore``."""
    inspect = celery.control.inspect(timeout=timeout)
    held = 0
    for replies in (inspect.active() or {}, inspect.reserved() or {}):
        for tasks in replies.values():
            held += sum(1 for task in tasks if task.get("name") not in ignore)
    return held


def search_workers(celery: Any, wanted: Mapping[str, set[str]], depths: Mapping[str, int], timeout: float) -> Sighting:
    """Search for ``wanted`` task ids where the broker cannot show what waits or what workers hold.

    A queue with messages waiting is unsure (they cannot be read without taking
    them); the rest is asked of the workers. When no worker answers, every queue
    is unsure: nobody can say what they hold.
    """
    sighting = Sighting(unsure={queue for queue in wanted if depths.get(queue, 0) != 0})
    held, answers = held_by_workers(celery, set().union(*wanted.values()), timeout)
    sighting.found.update(held)
    sighting.workers = answers
    if answers == 0:
        sighting.unsure.update(wanted)
    return sighting
