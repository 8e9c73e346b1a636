"""What one relay run did (shared by the event and command halves of the relay)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RelayReport"]


@dataclass
class RelayReport:
    """What one relay run did."""

    events: int = 0
    commands: int = 0
    tasks: int = 0
    failed: int = 0
    #: Commands read that no handler of the app takes (logged; see ``commands.py``).
    unrouted: int = 0

    @property
    def moved(self) -> int:
        """Outbox rows plus commands relayed."""
        return self.events + self.commands
