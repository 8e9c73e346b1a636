"""Beat entries for the relay. Pure.

One entry per outbox provider (the databases Protean writes outbox rows to) and
one for the command relay. Each tick expires after one interval, so a backlog of
ticks never piles up behind busy workers: the next tick does the same work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["beat_entries"]


def beat_entries(
    relay_tasks: dict[str, str], relay_queue: str, providers: Iterable[str], interval: float
) -> dict[str, dict[str, Any]]:
    """The ``beat_schedule`` entries that tick the relays every ``interval`` seconds."""
    options = {"queue": relay_queue, "expires": interval}
    entries: dict[str, dict[str, Any]] = {}
    for provider in providers:
        entries[f"{relay_tasks['outbox']}[{provider}]"] = {
            "task": relay_tasks["outbox"],
            "schedule": interval,
            "kwargs": {"provider": provider},
            "options": dict(options),
        }
    entries[relay_tasks["commands"]] = {
        "task": relay_tasks["commands"],
        "schedule": interval,
        "options": dict(options),
    }
    return entries
