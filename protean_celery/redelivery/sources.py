"""What the relays published, read back for the redelivery sweep (I/O, reads only).

Two sources, each read past a position the sweep keeps in the relay's cursor table:

* **outbox rows** of one provider, status ``published``, by ``published_at``
  (the position is epoch microseconds);
* **commands** of one category from the event store, by global position, up to
  the command relay's own cursor (what it has not relayed yet is not lost), for
  asynchronous commands the relay would publish (not above ``max_payload_bytes``);
  with the outbox off, **events** of one category likewise, up to the event store
  relay's cursor (``outbox/events.py``).

Only messages relayed at least ``redeliver_after`` seconds ago and within
``sweep_horizon_hours`` are returned, one :class:`Watch` per handler task the
topology sends them to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from protean.utils.eventing import Message

from protean_celery.envelope import encode, message_key, metadata_of
from protean_celery.errors import PayloadTooLarge
from protean_celery.intake import check_size
from protean_celery.outbox.relay import command_cursor_name
from protean_celery.outbox.rows import command_message, command_rows, outbox_message, published_rows
from protean_celery.redelivery.ledger import Watch
from protean_celery.settings import CelerySettings
from protean_celery.topology import Topology

__all__ = ["Batch", "SCAN_BATCH", "read_commands", "read_outbox"]

#: Rows (or commands) one read returns at most.
SCAN_BATCH = 1000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Batch:
    """One read: the pairs to check, the position to move to, whether there may be more."""

    items: list[Watch] = field(default_factory=list)
    position: int = -1
    full: bool = False


def read_outbox(
    domain: Any, topology: Topology, settings: CelerySettings, provider: str, mark: int, now: datetime
) -> Batch:
    """Outbox rows of ``provider`` published after ``mark`` (epoch microseconds) and before the cutoff."""
    cutoff = now - timedelta(seconds=settings.redeliver_after)
    start = max(_from_micros(mark), now - timedelta(hours=settings.sweep_horizon_hours))
    rows = published_rows(domain, provider, start, cutoff, SCAN_BATCH)
    if not rows:
        return Batch(position=mark)
    items: list[Watch] = []
    for row in rows:
        message, category = outbox_message(row)
        items.extend(_watches(topology, message, category, _aware(row.published_at)))
    last = _micros(_aware(rows[-1].published_at))
    if len(rows) == SCAN_BATCH and last > _micros(_aware(rows[0].published_at)):
        # The batch may have cut a group of rows one relay run marked with one
        # timestamp: read that timestamp again next time (settled rows stay settled).
        last -= 1
    return Batch(items, max(last, mark), len(rows) == SCAN_BATCH)


def read_commands(
    domain: Any, topology: Topology, settings: CelerySettings, cursors: Any, category: str, position: int,
    now: datetime, relay_cursor: str | None = None,
) -> Batch:
    """Commands of ``category`` past ``position``, up to the relay's cursor (``relay_cursor``, the command
    relay's by default; the event store relay's for events) and the cutoff."""
    cutoff = now - timedelta(seconds=settings.redeliver_after)
    floor = now - timedelta(hours=settings.sweep_horizon_hours)
    relayed_to = cursors.position(relay_cursor or command_cursor_name(category))
    rows = command_rows(domain.event_store.store, category, position, SCAN_BATCH)
    items: list[Watch] = []
    read = 0
    for row in rows:
        if int(row["global_position"]) > relayed_to:
            break
        message = _command(row)
        if message is not None:
            written = _aware(metadata_of(message).headers.time or row.get("time") or now)
            if written > cutoff:
                break
            asynchronous = getattr(metadata_of(message).domain, "asynchronous", True)
            if written >= floor and asynchronous and _fits(message, settings.max_payload_bytes):
                items.extend(_watches(topology, message, category, written))
        position = int(row["global_position"])
        read += 1
    return Batch(items, position, read == SCAN_BATCH)


def _watches(topology: Topology, message: Message, category: str, relayed_at: datetime) -> list[Watch]:
    routes = topology.targets(category, str(metadata_of(message).headers.type))
    if not routes:
        return []
    key, payload = message_key(message), encode(message)
    return [Watch(route.task_name, key, category, payload, relayed_at) for route in routes]


def _fits(message: Message, limit: int) -> bool:
    """Whether the command relay published it (one above ``max_payload_bytes`` it dead-lettered)."""
    try:
        check_size(encode(message), limit, "sweep")
        return True
    except PayloadTooLarge:
        return False


def _command(row: dict[str, Any]) -> Message | None:
    try:
        return command_message(row)
    except Exception:  # the command relay dead-letters what it cannot decode
        return None


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _from_micros(mark: int) -> datetime:
    return _EPOCH + timedelta(microseconds=max(mark, 0))
