"""What protean-celery asks of a broker, whatever its transport (the interface).

Five questions, each answered by one adapter per transport (:mod:`.redis`,
:mod:`.amqp`, :mod:`.memory`; :func:`protean_celery.broker.broker_for` picks it):

* how many messages wait in each queue (``depths``);
* how long the oldest of them has waited (``oldest_age``; ``None`` where the broker cannot show it);
* how many messages workers hold, delivered but not acknowledged (``in_flight``);
* whether a task message is still somewhere, by task id (``locate``);
* put back on its queue what a worker took and no worker holds any more (``reclaim``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["Broker", "Reclaimed", "Sighting"]


@dataclass
class Sighting:
    """What a search for task ids saw.

    Attributes:
        found: task ids with a copy in a queue, in Redis' unacked hash, or held by a worker.
        unsure: queues that could not be searched; their tasks count as present.
        workers: how many workers answered (brokers that must ask them; Redis needs no answers).
    """

    found: set[str] = field(default_factory=set)
    unsure: set[str] = field(default_factory=set)
    workers: int = 0

    def present(self, queue: str, task_id: str) -> bool:
        """Whether the message may still be on its way (seen, or its queue could not be searched)."""
        return task_id in self.found or queue in self.unsure


@dataclass(frozen=True)
class Reclaimed:
    """One message put back on its queue."""

    task: str
    task_id: str
    routing_key: str
    held_for: float


@runtime_checkable
class Broker(Protocol):
    """The broker questions protean-celery asks; one implementation per Kombu transport."""

    def depths(self, queues: Iterable[str]) -> dict[str, int]:
        """Messages waiting (ready, not yet delivered) in each of ``queues``; 0 for a queue not declared yet."""
        ...

    def oldest_age(self, queue: str) -> float | None:
        """Seconds since the oldest message waiting in ``queue`` was written (0.0 when none waits).

        ``None`` when the broker cannot show a waiting message without taking it (AMQP),
        or the oldest one is not a Protean message (see :mod:`protean_celery.broker.age`).
        """
        ...

    def in_flight(self, *, ignore: Collection[str] = (), timeout: float = 1.0) -> int:
        """Messages delivered to workers and not yet acknowledged.

        Args:
            ignore: task names not to count, where the answer comes from the workers.
            timeout: how long to wait for the workers' answers, where the broker must ask them.
        """
        ...

    def locate(self, wanted: Mapping[str, set[str]], *, scan_limit: int = 10_000, timeout: float = 1.0) -> Sighting:
        """Search for the task ids ``wanted`` (by queue name) in the broker and the workers.

        Args:
            wanted: task ids to look for, per queue.
            scan_limit: a queue longer than this is not read (it is unsure).
            timeout: how long to wait for the workers' answers.
        """
        ...

    def reclaim(self, older_than: float, *, timeout: float = 1.0, limit: int = 1000) -> list[Reclaimed]:
        """Put back on their queues the messages taken more than ``older_than`` s ago that no worker holds.

        Args:
            older_than: seconds since a worker took the message.
            timeout: how long to wait for the workers' answers.
            limit: messages looked at per call (the oldest first).

        Returns:
            What was put back; empty on a broker that redelivers by itself.
        """
        ...
