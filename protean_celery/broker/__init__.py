"""One adapter per broker, behind one small interface (:class:`~protean_celery.broker.base.Broker`).

``broker_for(celery)`` picks the adapter from the transport of the app's broker
URL: Redis (``redis``, ``rediss``, ``redis+socket``, ``sentinel``), Kombu's
``memory``, and AMQP for the rest (RabbitMQ, and any other transport: its
queues are counted with passive declares and its workers asked). Kombu's private
names are used in this package only (and in :mod:`protean_celery.worker`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protean_celery.broker.amqp import AmqpBroker
from protean_celery.broker.base import Broker, Reclaimed, Sighting
from protean_celery.broker.memory import MemoryBroker
from protean_celery.broker.redis import RedisBroker

__all__ = ["AmqpBroker", "Broker", "MemoryBroker", "RedisBroker", "Reclaimed", "Sighting", "broker_for"]

#: The adapter for each Kombu transport ``driver_type``; AMQP for any other.
ADAPTERS: dict[str, Callable[[Any], Broker]] = {
    "redis": RedisBroker,
    "memory": MemoryBroker,
}


def broker_for(celery: Any) -> Broker:
    """The adapter for ``celery``'s broker (read from its connection's transport; nothing is connected).

    Args:
        celery: a Celery app (a ``ProteanCelery`` or a plain ``celery.Celery``).
    """
    with celery.connection_for_read() as connection:
        driver = connection.transport.driver_type
    return ADAPTERS.get(driver, AmqpBroker)(celery)
