"""Unacknowledged Redis messages no worker holds go back to their queue early (I/O).

Kombu's Redis transport records every message a worker takes in its ``unacked``
hash and puts it back on its queue only after ``visibility_timeout`` (an hour
by default), because it cannot tell a slow worker from a dead one. Entries
nobody will ever acknowledge are left behind when

* a worker main process is killed (its reserved and running messages), or
* Redis restarts while a worker holds messages: the acknowledgements go to the
  lost connection ("Couldn't ack"), and messages it had reserved but not
  started are dropped from the worker on reconnect;

and the saga those messages belong to waits for the timeout. :func:`reclaim`
asks the workers instead: an entry older than ``older_than`` seconds whose task
id no worker reports (Celery's ``query_task``: active, reserved or scheduled)
is put back on its queue with Kombu's own ``restore_by_tag`` (a transaction:
an entry acknowledged meanwhile is left alone). When no worker answers, nothing
is reclaimed: nobody could run it now, and the workers may only be slow. A
message reclaimed from a live worker that did not answer in time runs twice;
the inbox absorbs the second run.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from protean_celery.redelivery.probe import held_by_workers

__all__ = ["Reclaimed", "reclaim"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reclaimed:
    """One message put back on its queue."""

    task: str
    task_id: str
    routing_key: str
    held_for: float


def reclaim(celery: Any, older_than: float, *, timeout: float = 1.0, limit: int = 1000) -> list[Reclaimed]:
    """Put back on their queues the Redis unacked messages older than ``older_than`` s that no worker holds.

    Args:
        celery: the Celery app (its broker connection and remote control).
        older_than: seconds since a worker took the message.
        timeout: how long to wait for the workers' answers.
        limit: entries looked at per call (the oldest first).

    Returns:
        What was put back; empty on a broker without an unacked hash (AMQP redelivers itself).
    """
    with celery.connection_for_write() as connection:
        channel = connection.default_channel
        client = getattr(channel, "client", None)
        if client is None or not hasattr(channel, "unacked_index_key") or not hasattr(channel, "qos"):
            return []
        now = time.time()
        old = client.zrange(channel.unacked_index_key, 0, now - older_than, byscore=True, offset=0, num=limit,
                            withscores=True)
        candidates = {}
        for tag, taken_at in old or []:
            entry = _entry(client.hget(channel.unacked_key, tag))
            if entry is not None:
                candidates[tag] = (*entry, now - float(taken_at))
        if not candidates:
            return []
        held, answers = held_by_workers(celery, {task_id for _, task_id, _, _ in candidates.values()}, timeout)
        if not answers:  # nobody could run them now, and the workers may only be slow
            return []
        reclaimed = []
        for tag, (task, task_id, routing_key, held_for) in candidates.items():
            if task_id in held:
                continue
            channel.qos.restore_by_tag(tag, client)
            reclaimed.append(Reclaimed(task, task_id, routing_key, held_for))
            logger.warning(
                "redelivery sweep: %s[%s] was taken by a worker %.0f s ago and no worker holds it now; "
                "put back on its queue (routing key %s)", task, task_id, held_for, routing_key,
            )
    return reclaimed


def _entry(raw: Any) -> tuple[str, str, str] | None:
    """(task name, task id, routing key) of an unacked hash value ``[message, exchange, routing_key]``."""
    try:
        message, _exchange, routing_key = json.loads(raw)
        headers = message["headers"]
        return str(headers["task"]), str(headers["id"]), str(routing_key)
    except (ValueError, TypeError, KeyError):
        return None
