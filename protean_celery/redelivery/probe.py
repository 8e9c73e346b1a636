"""Is a task message still somewhere? Search the broker and ask the workers (I/O).

The sweep republishes a message only when no copy of its task is anywhere:

* **Redis**: not in the handler queue's lists (every priority level) and not in
  Kombu's ``unacked`` hash, which holds every message a worker has taken and not
  acknowledged (reserved, running, or waiting for a retry countdown: handler
  tasks acknowledge late), including those of a worker that was killed, until
  the visibility timeout restores them;
* **AMQP** (RabbitMQ) and other brokers: a queue's ready messages cannot be read
  without taking them, so a handler whose queue is not empty is *unsure* (the
  sweep waits), and no worker reports the task id as active, reserved or
  scheduled (Celery's ``query_task`` remote control command). When no worker
  answers, every queue is unsure.

A Redis queue longer than the scan limit is unsure too (reading it would cost
more than waiting for it to drain).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Sighting", "held_by_workers", "locate"]

logger = logging.getLogger(__name__)


@dataclass
class Sighting:
    """What the probe saw.

    Attributes:
        found: task ids with a copy in a queue, in Redis' unacked hash, or held by a worker.
        unsure: queues the probe could not search; their tasks count as present.
        workers: how many workers answered (AMQP; Redis needs no answers).
    """

    found: set[str] = field(default_factory=set)
    unsure: set[str] = field(default_factory=set)
    workers: int = 0

    def present(self, queue: str, task_id: str) -> bool:
        """Whether the message may still be on its way (seen, or its queue could not be searched)."""
        return task_id in self.found or queue in self.unsure


def locate(celery: Any, wanted: Mapping[str, set[str]], *, scan_limit: int = 10_000, timeout: float = 1.0) -> Sighting:
    """Search for the task ids ``wanted`` (by queue name) in the broker and the workers.

    Args:
        celery: the Celery app.
        wanted: task ids to look for, per handler queue.
        scan_limit: a Redis queue longer than this is not read (it is unsure).
        timeout: how long to wait for the workers' answers.
    """
    sighting = Sighting()
    ids = set().union(*wanted.values()) if wanted else set()
    if not ids:
        return sighting
    with celery.connection_for_read() as connection:
        channel = connection.default_channel
        client = getattr(channel, "client", None)
        if client is not None and hasattr(channel, "unacked_key") and hasattr(channel, "_q_for_pri"):
            # Handler tasks acknowledge late, so whatever a worker holds is in the unacked
            # hash: no need to wait for the workers' answers.
            _search_redis(channel, client, wanted, ids, scan_limit, sighting)
            return sighting
        for queue in wanted:
            if _ready(connection, queue) != 0:
                sighting.unsure.add(queue)
    if _ask_workers(celery, ids, timeout, sighting) == 0:
        # Nobody answered and the broker cannot say what workers hold: assume they hold it all.
        sighting.unsure.update(wanted)
    return sighting


def _search_redis(
    channel: Any, client: Any, wanted: Mapping[str, set[str]], ids: set[str], scan_limit: int, sighting: Sighting
) -> None:
    prefix = str(getattr(client, "global_keyprefix", "") or "")
    for queue, queue_ids in wanted.items():
        if int(channel._size(queue)) > scan_limit:
            sighting.unsure.add(queue)
            continue
        for priority in channel.priority_steps:
            for raw in client.lrange(prefix + channel._q_for_pri(queue, priority), 0, -1):
                task_id = _task_id(raw)
                if task_id in queue_ids:
                    sighting.found.add(task_id)
    for raw in client.hvals(prefix + channel.unacked_key):
        try:
            message = json.loads(raw)[0]
        except (ValueError, TypeError, IndexError, KeyError):
            continue
        task_id = _headers_id(message)
        if task_id in ids:
            sighting.found.add(task_id)


def _task_id(raw: Any) -> str | None:
    try:
        return _headers_id(json.loads(raw))
    except (ValueError, TypeError):
        return None


def _headers_id(message: Any) -> str | None:
    if isinstance(message, dict) and isinstance(message.get("headers"), dict):
        value = message["headers"].get("id")
        return str(value) if value is not None else None
    return None


def _ready(connection: Any, queue: str) -> int:
    """Ready messages in an AMQP queue (a passive declare; 0 for a queue not declared yet)."""
    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception:
        return 0  # no such queue: nothing waits in it
    finally:
        try:
            channel.close()
        except Exception:
            pass


def _ask_workers(celery: Any, ids: Iterable[str], timeout: float, sighting: Sighting) -> int:
    held, answers = held_by_workers(celery, ids, timeout)
    sighting.found.update(held)
    sighting.workers = answers
    return answers


def held_by_workers(celery: Any, ids: Iterable[str], timeout: float) -> tuple[set[str], int]:
    """The task ids among ``ids`` that a worker reports as active, reserved or scheduled (``query_task``).

    Returns those ids and how many workers answered (0 when asking failed: the broker hiccuped).
    """
    try:
        replies = celery.control.inspect(timeout=timeout).query_task(*sorted(ids)) or {}
    except Exception as exc:  # treat as no answer
        logger.warning("redelivery sweep: asking the workers failed: %r", exc)
        return set(), 0
    return {str(task_id) for tasks in replies.values() for task_id in (tasks or {})}, len(replies)
