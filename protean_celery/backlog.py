"""What is still waiting, across the relay and the broker (I/O).

``backlog(app)`` counts outbox rows and commands not yet relayed, messages
waiting in each handler queue, and messages delivered but not yet acknowledged:
on Redis from Kombu's unacked index, on AMQP (RabbitMQ), which does not say, by
asking the workers (``inspect active`` and ``reserved``); see
:mod:`protean_celery.broker`. A system is quiescent when all of them are zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protean_celery.broker import broker_for

__all__ = ["Backlog", "backlog"]


@dataclass(frozen=True)
class Backlog:
    """Work not yet done."""

    unrelayed: int
    queued: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0

    @property
    def total(self) -> int:
        """Everything still to do."""
        return self.unrelayed + sum(self.queued.values()) + self.in_flight

    @property
    def quiescent(self) -> bool:
        """Nothing is pending anywhere."""
        return self.total == 0


def backlog(app: Any, inspect_timeout: float = 1.0) -> Backlog:
    """Measure ``app``'s backlog now.

    Args:
        app: the ProteanCelery app.
        inspect_timeout: where the broker cannot say what workers hold (AMQP), how long to wait for
            the workers' replies.
    """
    broker = broker_for(app)
    queued = broker.depths(queue.name for queue in app.topology.queues)
    in_flight = broker.in_flight(ignore=set(app.topology.relay_tasks.values()), timeout=inspect_timeout)
    return Backlog(unrelayed=app.runtime.relay.pending(), queued=queued, in_flight=in_flight)
