"""The event half of the event store relay: Protean's default delivery, with the outbox off (I/O).

``Domain()`` leaves ``enable_outbox`` false: the Unit of Work appends a handler's
events to the event store and writes no outbox row, and Protean's own server
reads them with event store subscriptions. Under protean-celery the relay reads
each event category the app's handlers subscribe to past a durable cursor, exactly
as it reads commands (``commands.py``, ``cursor.py``): the cursor stays locked
from reading to publishing to moving it, so two relays never publish one event
twice, and a crash in between re-publishes that batch once (the inbox absorbs
the copy: task ids derive from the message key).

Which categories: every category an event handler, projector or process manager
subscribes to; a handler on ``$all`` adds every aggregate's category (what it
gets from the outbox when the outbox is on). Command categories are the command
relay's. With the outbox on, the same events also reach the event store, and
the outbox relays them: this relay then reads nothing.

A cursor starts before the first event of its category, so a first deployment
over an event store with history delivers that history (as Protean's event
store subscriptions do when they have no stored position).
"""

from __future__ import annotations

from typing import Any

from protean.utils import fqn

from protean_celery.naming import ALL_STREAMS
from protean_celery.outbox.report import RelayReport
from protean_celery.registry import HandlerKind

__all__ = ["EventStoreRelay", "event_cursor_name", "stored_event_categories"]


class EventStoreRelay:
    """Relays events from the event store past per-category cursors; mixed into :class:`~.relay.Relay`."""

    domain: Any
    topology: Any
    _event_categories: tuple[str, ...] | None = None

    def _category_batch(  # pragma: no cover - CommandRelay's
        self, category: str, cursor: str, report: RelayReport, assume_new: bool = False, commands: bool = False,
        done: Any = None, grace: bool = False,
    ) -> int:
        raise NotImplementedError

    def _waiting(self, category: str, cursor: str, limit: int = 1000) -> int:  # pragma: no cover - CommandRelay's
        raise NotImplementedError

    def event_categories(self) -> tuple[str, ...]:
        """The event categories this relay reads from the event store (none when the outbox is on)."""
        if self._event_categories is None:
            self._event_categories = stored_event_categories(self.domain, self.topology)
        return self._event_categories

    def _stored_event_batch(
        self, report: RelayReport, which: bool | list[str], batch: int = 0, done: Any = None, grace: bool = False,
    ) -> None:
        """Relay one batch of every event category (``True``) or of the listed ones (just appended to).

        ``done`` and ``grace`` as for commands (``CommandRelay._category_batch``).
        """
        if which is True:
            chosen, assume_new = list(self.event_categories()), False
        else:  # listed categories were just appended to: skip the peek once
            chosen, assume_new = [c for c in which or () if c in self.event_categories()], batch == 0
        for category in chosen:
            report.events += self._category_batch(
                category, event_cursor_name(category), report, assume_new, done=done, grace=grace,
            )

    def _stored_events_waiting(self) -> int:
        """Events past the cursors, still to relay (for drains)."""
        return sum(self._waiting(category, event_cursor_name(category)) for category in self.event_categories())


def stored_event_categories(domain: Any, topology: Any) -> tuple[str, ...]:
    """The event categories to read from ``domain``'s event store: none with the outbox on.

    Args:
        domain: the initialised Protean domain.
        topology: the app's topology (its handlers and their categories).
    """
    if domain.has_outbox:
        return ()
    commands = set(topology.command_categories())
    wanted: set[str] = set()
    for route in topology.routes:
        if route.spec.kind is not HandlerKind.COMMAND_DISPATCHER:
            wanted.update(route.spec.categories)
    if ALL_STREAMS in wanted:
        wanted.discard(ALL_STREAMS)
        wanted.update(_aggregate_categories(domain))
    return tuple(sorted(wanted - commands))


def _aggregate_categories(domain: Any) -> set[str]:
    records = sorted(
        (record for record in domain.registry.aggregates.values() if not record.internal), key=lambda r: fqn(r.cls)
    )
    return {str(record.cls.meta_.stream_category) for record in records}


def event_cursor_name(category: str) -> str:
    """The name of the event store relay's cursor for the event ``category``."""
    return f"events:{category}"
