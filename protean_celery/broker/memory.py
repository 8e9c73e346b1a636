"""The broker adapter for Kombu's in-memory transport (tests, ``drain()``) (I/O).

Queue depths come from the virtual channel's ``_size`` (Kombu internals, allowed
only in this package; the Redis adapter counts its lists the same way); the
oldest message is read from the head of the channel's ``_queue_for`` queue. The
transport keeps no record of what consumers hold, so nothing is in flight and
nothing is reclaimed; a search asks the workers, as on AMQP (in a test there
usually are none, and every searched queue is unsure).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from protean_celery.broker.age import message_age
from protean_celery.broker.amqp import AmqpBroker

__all__ = ["MemoryBroker", "virtual_depths"]


def virtual_depths(celery: Any, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each queue of a Kombu virtual transport (memory, Redis: every priority level)."""
    with celery.connection_for_read() as connection:
        channel = connection.default_channel
        return {name: int(channel._size(name)) for name in queues}


class MemoryBroker(AmqpBroker):
    """Kombu's ``memory://`` transport: searched like AMQP, counted from the channel, nothing held.

    Args:
        celery: the Celery app.
    """

    def depths(self, queues: Iterable[str]) -> dict[str, int]:
        """Messages waiting in each queue."""
        return virtual_depths(self.celery, queues)

    def oldest_age(self, queue: str) -> float | None:
        """The age of the message at the head of ``queue`` (read, not taken); 0.0 when it is empty."""
        with self.celery.connection_for_read() as connection:
            channel = connection.default_channel
            waiting = channel._queue_for(queue).queue  # a deque: the next message out is the first
            return message_age(channel, waiting[0]) if waiting else 0.0

    def in_flight(self, *, ignore: Collection[str] = (), timeout: float = 1.0) -> int:
        """Always 0: the transport does not record what its consumers hold."""
        return 0
