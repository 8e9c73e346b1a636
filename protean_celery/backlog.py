"""What is still waiting, across the relay and the broker (I/O).

``backlog(app)`` counts outbox rows and commands not yet relayed, messages
waiting in each handler queue, and messages delivered but not yet acknowledged:
on Redis from Kombu's unacked index, on AMQP (RabbitMQ), which does not say, by
asking the workers (``inspect active`` and ``reserved``). A system is quiescent
when all of them are zero.
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


def backlog(app: Any, inspect_timeout: float = 1.0) -> Backlog:
    """Measure ``app``'s backlog now.

    Args:
        app: the ProteanCelery app.
        inspect_timeout: on AMQP, how long to wait for the workers' replies.
    """
    queued: dict[str, int] = {}
    in_flight = 0
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        if hasattr(channel, "_size"):  # Kombu's virtual transports: Redis, memory, SQS …
            for queue in app.topology.queues:
                queued[queue.name] = int(channel._size(queue.name))
            client = getattr(channel, "client", None)
            unacked = getattr(channel, "unacked_key", None)
            if client is not None and unacked:
                in_flight = int(client.hlen(unacked))
        else:
            for queue in app.topology.queues:
                queued[queue.name] = _ready_messages(connection, queue.name)
            in_flight = _held_by_workers(app, inspect_timeout)
    return Backlog(unrelayed=app.runtime.relay.pending(), queued=queued, in_flight=in_flight)


def _ready_messages(connection: Any, name: str) -> int:
    """Ready messages in an AMQP queue (a passive declare; 0 for a queue not declared yet)."""
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


def _held_by_workers(app: Any, timeout: float) -> int:
    """Handler tasks the workers are running or hold reserved (relay ticks left out)."""
    relay = set(app.topology.relay_tasks.values())
    inspect = app.control.inspect(timeout=timeout)
    held = 0
    for replies in (inspect.active() or {}, inspect.reserved() or {}):
        for tasks in replies.values():
            held += sum(1 for task in tasks if task.get("name") not in relay)
    return held
