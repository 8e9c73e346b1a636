"""What is still waiting, across the relay and the broker (I/O).

``backlog(app)`` counts outbox rows and commands not yet relayed, messages
waiting in each handler queue, and (on Redis) messages delivered but not yet
acknowledged. A system is quiescent when all of them are zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


def backlog(app: Any) -> Backlog:
    """Measure ``app``'s backlog now."""
    queued: dict[str, int] = {}
    in_flight = 0
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        for queue in app.topology.queues:
            queued[queue.name] = int(channel._size(queue.name)) if hasattr(channel, "_size") else 0
        client = getattr(channel, "client", None)
        unacked = getattr(channel, "unacked_key", None)
        if client is not None and unacked:
            in_flight = int(client.hlen(unacked))
    return Backlog(unrelayed=app.runtime.relay.pending(), queued=queued, in_flight=in_flight)
