"""What one relay run did (shared by the event and command halves of the relay)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RelayReport"]


@dataclass
class RelayReport:
    """What one relay run did.

    Attributes:
        events: outbox rows published (to handler tasks or to an external broker).
        commands: commands relayed.
        tasks: task messages published for them.
        failed: outbox rows that failed to publish (retried with backoff).
        external: of ``events``, the rows published to an external broker.
        unrouted: commands read that no handler of the app takes (dead-lettered; see ``commands.py``).
    """

    events: int = 0
    commands: int = 0
    tasks: int = 0
    failed: int = 0
    external: int = 0
    unrouted: int = 0

    @property
    def moved(self) -> int:
        """Outbox rows plus commands relayed."""
        return self.events + self.commands
