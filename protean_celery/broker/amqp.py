"""The broker adapter for AMQP (RabbitMQ) and any transport without a special one (I/O).

An AMQP queue says how many messages are ready (a passive ``queue.declare``)
but not which: they cannot be read without taking them. Nor does the broker say
what its consumers hold. So a queue with ready messages is *unsure* when
searched, and what workers hold is asked of the workers
(:mod:`protean_celery.broker.workers`). Nothing needs reclaiming: RabbitMQ
requeues a consumer's unacknowledged messages as soon as its channel closes.

Only public Kombu API is used here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from protean_celery.broker.base import Reclaimed, Sighting
from protean_celery.broker.workers import count_held, search_workers

__all__ = ["AmqpBroker"]


class AmqpBroker:
    """Queue depths from passive declares; whatever is held, from the workers.

    Args:
        celery: the Celery app (its broker connection and remote control).
    """

    def __init__(self, celery: Any) -> None:
        self.celery = celery

    def depths(self, queues: Iterable[str]) -> dict[str, int]:
        """Ready messages in each queue (0 for a queue not declared yet)."""
        with self.celery.connection_for_read() as connection:
            return {name: _ready(connection, name) for name in queues}

    def oldest_age(self, queue: str) -> float | None:
        """``None``: AMQP cannot show a waiting message without taking it off its queue."""
        return None

    def in_flight(self, *, ignore: Collection[str] = (), timeout: float = 1.0) -> int:
        """Tasks the workers are running or hold reserved, but those named in ``ignore``."""
        return count_held(self.celery, ignore, timeout)

    def locate(self, wanted: Mapping[str, set[str]], *, scan_limit: int = 10_000, timeout: float = 1.0) -> Sighting:
        """A queue with ready messages is unsure; the workers say what they hold (``scan_limit`` is unused)."""
        if not any(wanted.values()):
            return Sighting()
        return search_workers(self.celery, wanted, self.depths(wanted), timeout)

    def reclaim(self, older_than: float, *, timeout: float = 1.0, limit: int = 1000) -> list[Reclaimed]:
        """Nothing: the broker requeues what a lost consumer held by itself."""
        return []


def _ready(connection: Any, name: str) -> int:
    """Ready messages in a queue (a passive declare; 0 for a queue not declared yet)."""
    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue=name, passive=True).message_count)
    except Exception:  # a missing queue closes the channel: it holds nothing
        return 0
    finally:
        try:
            channel.close()
        except Exception:
            pass
