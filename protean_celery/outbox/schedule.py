"""Beat entries for the relay and the maintenance task. Pure.

One entry per outbox provider (the databases Protean writes outbox rows to), one
for the command relay, one for maintenance (pruning inbox markers, dead
letters and old outbox rows), one for the redelivery sweep and one firing due
deadlines. Each tick expires after one interval, so a backlog of ticks never
piles up behind busy workers: the next tick does the same work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["beat_entries"]


def beat_entries(
    relay_tasks: dict[str, str],
    relay_queue: str,
    providers: Iterable[str],
    interval: float,
    maintenance_interval: float | None = None,
    sweep_interval: float | None = None,
    deadline_interval: float | None = None,
) -> dict[str, dict[str, Any]]:
    """The ``beat_schedule`` entries for the relay queue's periodic tasks.

    Args:
        relay_tasks: the relay task names by role (``outbox``, ``commands``, ``maintenance``).
        relay_queue: the queue they run on.
        providers: the outbox providers, one outbox entry each.
        interval: seconds between relay ticks.
        maintenance_interval: seconds between maintenance ticks; ``None`` (or no
            ``maintenance`` task) schedules none.
        sweep_interval: seconds between redelivery sweeps; ``None`` or ``0`` (or no
            ``sweep`` task) schedules none.
        deadline_interval: seconds between ticks firing due deadlines; ``None`` (or no
            ``deadlines`` task) schedules none.
    """
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
    if maintenance_interval and "maintenance" in relay_tasks:
        entries[relay_tasks["maintenance"]] = {
            "task": relay_tasks["maintenance"],
            "schedule": maintenance_interval,
            "options": {"queue": relay_queue, "expires": maintenance_interval},
        }
    if sweep_interval and "sweep" in relay_tasks:
        entries[relay_tasks["sweep"]] = {
            "task": relay_tasks["sweep"],
            "schedule": sweep_interval,
            "options": {"queue": relay_queue, "expires": sweep_interval},
        }
    if deadline_interval and "deadlines" in relay_tasks:
        entries[relay_tasks["deadlines"]] = {
            "task": relay_tasks["deadlines"],
            "schedule": deadline_interval,
            "options": {"queue": relay_queue, "expires": deadline_interval},
        }
    return entries
