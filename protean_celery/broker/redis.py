"""The broker adapter for Kombu's Redis transport: the one place that reads its internals (I/O).

Kombu's Redis transport keeps each queue as one list per priority level and
records every message a worker takes in its ``unacked`` hash (with the time it
was taken in the ``unacked_index`` sorted set) until the worker acknowledges it.
Handler tasks acknowledge late, so that hash holds whatever workers have
reserved, are running or wait to retry, including the messages of a worker that
was killed. Kombu names used here and nowhere else: the channel's ``client``,
``_size``, ``_q_for_pri``, ``priority_steps``, ``unacked_key``,
``unacked_index_key`` and ``qos.restore_by_tag``.

**Search** (``locate``): a task is present when its id is in its queue's lists
or in the unacked hash; no need to ask the workers. A queue longer than the scan
limit is unsure (reading it would cost more than waiting for it to drain).

**Reclaim**: Kombu puts an unacked message back on its queue only after
``visibility_timeout`` (an hour by default), because it cannot tell a slow
worker from a dead one. Entries nobody will ever acknowledge are left behind
when a worker main process is killed (its reserved and running messages), or
when Redis restarts while a worker holds messages (the acknowledgements go to
the lost connection, and messages it had reserved but not started are dropped
from the worker on reconnect). :meth:`RedisBroker.reclaim` asks the workers
instead: an entry older than ``older_than`` seconds whose task id no worker
reports (Celery's ``query_task``: active, reserved or scheduled) is put back on
its queue with Kombu's own ``restore_by_tag`` (a transaction: an entry
acknowledged meanwhile is left alone). When no worker answers, nothing is
reclaimed: nobody could run it now, and the workers may only be slow. With
several nodes, nothing is reclaimed either while a node that answered recently
is silent (:mod:`protean_celery.broker.nodes`): it may be alive and slow, and what
it holds would run twice. One sweep reclaims at a time (a Redis lock: with two
beats, every sweep is sent twice), and an entry is put back only while it is
still the delivery that was judged: a copy put back and taken again by a live
worker keeps its delivery tag, with a new time in ``unacked_index``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from protean_celery.broker.age import message_age
from protean_celery.broker.base import Reclaimed, Sighting
from protean_celery.broker.memory import virtual_depths
from protean_celery.broker.nodes import silent_nodes
from protean_celery.broker.workers import held_by_nodes

__all__ = ["RedisBroker", "RECLAIM_LOCK"]

#: The Redis key that lets one sweep at a time reclaim.
RECLAIM_LOCK = "protean_celery.reclaim.lock"

logger = logging.getLogger(__name__)


class RedisBroker:
    """Kombu's ``redis://``, ``rediss://``, ``redis+socket://`` and ``sentinel://`` transports.

    Args:
        celery: the Celery app (its broker connection and remote control).
    """

    def __init__(self, celery: Any) -> None:
        self.celery = celery

    def depths(self, queues: Iterable[str]) -> dict[str, int]:
        """Messages waiting in each queue (every priority level)."""
        return virtual_depths(self.celery, queues)

    def oldest_age(self, queue: str) -> float | None:
        """The age of the oldest message waiting in ``queue`` (read with ``LINDEX``, not taken); 0.0 when empty.

        Kombu pushes on the left of each priority list and takes from the right, so
        the oldest message of a list is its last element; the oldest of all lists wins.
        """
        with self.celery.connection_for_read() as connection:
            channel = connection.default_channel
            client = channel.client
            prefix = str(getattr(client, "global_keyprefix", "") or "")
            ages = []
            for priority in channel.priority_steps:
                raw = client.lindex(prefix + channel._q_for_pri(queue, priority), -1)
                if raw is not None:
                    ages.append(_age(channel, raw))
        if not ages:
            return 0.0
        known = [age for age in ages if age is not None]
        return max(known) if known else None

    def in_flight(self, *, ignore: Collection[str] = (), timeout: float = 1.0) -> int:
        """Entries of the unacked hash: every message taken and not acknowledged (``ignore`` is not applied)."""
        with self.celery.connection_for_read() as connection:
            channel = connection.default_channel
            return int(channel.client.hlen(channel.unacked_key))

    def locate(self, wanted: Mapping[str, set[str]], *, scan_limit: int = 10_000, timeout: float = 1.0) -> Sighting:
        """Task ids in their queue's lists or in the unacked hash; a queue over ``scan_limit`` is unsure."""
        sighting = Sighting()
        ids = set().union(*wanted.values()) if wanted else set()
        if not ids:
            return sighting
        with self.celery.connection_for_read() as connection:
            channel = connection.default_channel
            client = channel.client
            prefix = str(getattr(client, "global_keyprefix", "") or "")
            for queue, queue_ids in wanted.items():
                if int(channel._size(queue)) > scan_limit:
                    sighting.unsure.add(queue)
                    continue
                sighting.found.update(_queued(channel, client, prefix, queue) & queue_ids)
            for raw in client.hvals(prefix + channel.unacked_key):
                if (task_id := _unacked_id(raw)) in ids:
                    sighting.found.add(task_id)
        return sighting

    def reclaim(self, older_than: float, *, timeout: float = 1.0, limit: int = 1000) -> list[Reclaimed]:
        """Put back on their queues the unacked messages older than ``older_than`` s that no worker holds.

        Args:
            older_than: seconds since a worker took the message.
            timeout: how long to wait for the workers' answers.
            limit: entries looked at per call (the oldest first).
        """
        with self.celery.connection_for_write() as connection:
            channel = connection.default_channel
            client = channel.client
            token = uuid.uuid4().hex
            if not client.set(RECLAIM_LOCK, token, nx=True, ex=max(60, int(timeout * 10))):
                return []  # another sweep is reclaiming right now
            try:
                return self._reclaim(channel, client, older_than, timeout, limit)
            finally:
                if _text(client.get(RECLAIM_LOCK)) == token:
                    client.delete(RECLAIM_LOCK)

    def _reclaim(self, channel: Any, client: Any, older_than: float, timeout: float, limit: int) -> list[Reclaimed]:
        candidates = _taken_before(channel, client, older_than, limit)
        if not candidates:
            return []
        held, answered = held_by_nodes(self.celery, {entry[1] for entry in candidates.values()}, timeout)
        if not answered:  # nobody could run them now, and the workers may only be slow
            return []
        silent = silent_nodes(client, answered, grace=older_than)
        if silent:  # alive a moment ago: they may hold some of these
            logger.info("redelivery sweep: reclaiming nothing while %s do not answer", ", ".join(sorted(silent)))
            return []
        reclaimed = []
        for tag, (task, task_id, routing_key, held_for, taken_at) in candidates.items():
            if task_id in held or client.zscore(channel.unacked_index_key, tag) != taken_at:
                continue  # held, or acknowledged or taken again since it was judged
            channel.qos.restore_by_tag(tag, client)
            reclaimed.append(Reclaimed(task, task_id, routing_key, held_for))
            logger.warning(
                "redelivery sweep: %s[%s] was taken by a worker %.0f s ago and no worker holds it now; "
                "put back on its queue (routing key %s)", task, task_id, held_for, routing_key,
            )
        return reclaimed


def _queued(channel: Any, client: Any, prefix: str, queue: str) -> set[str]:
    """Task ids in every priority list of ``queue``."""
    found = set()
    for priority in channel.priority_steps:
        for raw in client.lrange(prefix + channel._q_for_pri(queue, priority), 0, -1):
            task_id = _task_id(raw)
            if task_id is not None:
                found.add(task_id)
    return found


def _taken_before(
    channel: Any, client: Any, older_than: float, limit: int
) -> dict[Any, tuple[str, str, str, float, float]]:
    """Unacked entries taken more than ``older_than`` s ago, by tag: (task, task id, routing key, age, taken at)."""
    now = time.time()
    old = client.zrange(channel.unacked_index_key, 0, now - older_than, byscore=True, offset=0, num=limit,
                        withscores=True)
    candidates = {}
    for tag, taken_at in old or []:
        entry = _entry(client.hget(channel.unacked_key, tag))
        if entry is not None:
            candidates[tag] = (*entry, now - float(taken_at), float(taken_at))
    return candidates


def _age(channel: Any, raw: Any) -> float | None:
    """The age of a queued message as Redis stores it (JSON), or None."""
    try:
        return message_age(channel, json.loads(raw))
    except (ValueError, TypeError):
        return None


def _entry(raw: Any) -> tuple[str, str, str] | None:
    """(task name, task id, routing key) of an unacked hash value ``[message, exchange, routing_key]``."""
    try:
        message, _exchange, routing_key = json.loads(raw)
        headers = message["headers"]
        return str(headers["task"]), str(headers["id"]), str(routing_key)
    except (ValueError, TypeError, KeyError):
        return None


def _unacked_id(raw: Any) -> str | None:
    """The task id of an unacked hash value, or None."""
    try:
        message = json.loads(raw)[0]
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    return _headers_id(message)


def _task_id(raw: Any) -> str | None:
    """The task id of a queued message, or None."""
    try:
        return _headers_id(json.loads(raw))
    except (ValueError, TypeError):
        return None


def _headers_id(message: Any) -> str | None:
    if isinstance(message, dict) and isinstance(message.get("headers"), dict):
        value = message["headers"].get("id")
        return str(value) if value is not None else None
    return None


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
