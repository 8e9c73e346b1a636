"""Protean's priority lanes on Celery: a backfill queue beside each handler queue. Pure.

Protean's ``[server.priority_lanes]`` sends a message whose processing priority
(``processing_priority()``, ``domain.process(..., priority=)``; stored in
``metadata.domain.priority``) is strictly below ``threshold`` to a backfill
stream, which its engine reads only when the primary stream is empty. Here,
with lanes enabled, every handler task gets a second queue,
``<task>.<backfill_suffix>``, bound to its own exchange of the same name with
the same bindings; the relay publishes a message below the threshold there, and
every other message to the handler's queue as before. Workers consume both.

Why queues and not Kombu message priority: a backfill queue needs no queue
argument (RabbitMQ's ``x-max-priority`` cannot be added to a durable queue that
already exists) and keeps each queue a plain FIFO, so the redelivery sweep and
``protean status`` read both the same way on Redis and RabbitMQ.

What it gives: a worker takes the queues in turn (Kombu's round-robin on Redis,
one consumer per queue on RabbitMQ), so a message on the primary queue waits for
at most the backfill messages a worker already holds, never for the backlog.
It is not Protean's strict order: while both lanes have messages, a worker
alternates between them instead of starving the backfill.

A priority outside Protean's range (``Priority.BULK`` -100 to ``Priority.CRITICAL``
100) is clamped to it with a warning; the message is still delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protean.utils.processing import Priority

from protean_celery.errors import ConfigurationError

__all__ = ["Lanes", "LOWEST", "HIGHEST", "read_lanes", "clamp", "left_out_warning"]

logger = logging.getLogger(__name__)

#: Protean's priority range.
LOWEST, HIGHEST = int(Priority.BULK), int(Priority.CRITICAL)


@dataclass(frozen=True)
class Lanes:
    """Protean's ``[server.priority_lanes]``, as the relay applies them.

    Attributes:
        threshold: a priority strictly below it goes to the backfill lane.
        suffix: the backfill queue of task ``t`` is ``t.<suffix>``.
    """

    threshold: int
    suffix: str

    def backfill(self, priority: Any) -> bool:
        """Whether a message of ``priority`` (``None`` is ``NORMAL``) goes to the backfill lane."""
        return clamp(priority) < self.threshold


def read_lanes(config: Mapping[str, Any]) -> Lanes | None:
    """The priority lanes ``config`` enables, or ``None`` when they are off.

    Args:
        config: the domain's configuration (``domain.config``).

    Raises:
        ConfigurationError: ``threshold`` is outside Protean's priority range, or
            ``backfill_suffix`` cannot be part of a queue name.
    """
    table = (config.get("server") or {}).get("priority_lanes") or {}
    if not isinstance(table, Mapping) or not table.get("enabled"):
        return None
    threshold = table.get("threshold", 0)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not LOWEST <= threshold <= HIGHEST:
        raise ConfigurationError(
            f"[server.priority_lanes] threshold = {threshold!r} is outside Protean's priority range: "
            f"use an integer from {LOWEST} (Priority.BULK) to {HIGHEST} (Priority.CRITICAL); 0 sends "
            "LOW and BULK messages to the backfill lane."
        )
    suffix = table.get("backfill_suffix", "backfill")
    if not isinstance(suffix, str) or not suffix.isidentifier():
        raise ConfigurationError(
            f"[server.priority_lanes] backfill_suffix = {suffix!r} cannot end a queue name: "
            "use letters, digits and underscores (the default is 'backfill')."
        )
    return Lanes(threshold=int(threshold), suffix=suffix)


def clamp(priority: Any) -> int:
    """``priority`` within Protean's range; a value outside it is clamped with a warning.

    ``None`` (a message written before priorities existed) is ``Priority.NORMAL``.
    """
    if priority is None:
        return int(Priority.NORMAL)
    value = int(priority)
    if LOWEST <= value <= HIGHEST:
        return value
    bounded = min(max(value, LOWEST), HIGHEST)
    logger.warning(
        "processing priority %d is outside Protean's range (%d to %d); handled as %d", value, LOWEST, HIGHEST, bounded,
    )
    return bounded


def left_out_warning(queues: list[str], consumers: str) -> str:
    """The warning for backfill ``queues`` that ``consumers`` leave out although they take the handlers' queues.

    Args:
        queues: the backfill queues nobody consumes.
        consumers: who leaves them out ("this worker's -Q", "the running workers").
    """
    names = ",".join(queues)
    return (
        f"Backfill queue(s) {names} are not consumed by {consumers}, though their handler queues are: "
        "messages below the priority threshold ([server.priority_lanes]) wait there unhandled until a worker "
        f"consumes them. Add them to -Q (celery worker -Q ...,{names}) or start a worker with -Q {names}."
    )
