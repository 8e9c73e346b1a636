"""Where messages sit in their streams, read straight from the event store (I/O, reads only).

Ordered lanes (:mod:`protean_celery.ordering`) need two facts the relayed message
may not carry: an outbox event's position in its stream, and what lies between a
lane's last handled position and a message that came early. On the SQL event
store both are one indexed query on ``protean_events`` that decodes nothing; on
another store (Message DB) the stream is read through Protean instead (the
callers fall back when these return ``None``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from protean_celery.event_store.schema import events
from protean_celery.event_store.store import SQLEventStore

__all__ = ["stored_between", "stored_position"]


def stored_position(store: Any, stream: str, message_id: str) -> int | None:
    """The position of the message ``message_id`` in ``stream``; ``None`` when the store has no such message."""
    if isinstance(store, SQLEventStore):
        query = select(events.c.position).where(events.c.stream_name == stream, events.c.id == message_id)
        with store.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else int(row[0])
    for message in store.read_all(stream):
        if str(message.metadata.headers.id) == message_id:
            return int(message.metadata.event_store.position)
    return None


def stored_between(
    store: Any, stream: str, start: int, end: int, types: Collection[str]
) -> list[tuple[int, str, str, bool, datetime]] | None:
    """``(position, message key, type, asynchronous, time)`` of ``stream``'s messages in ``[start, end)``.

    Only messages of ``types`` (every type when empty). The message key is the
    inbox's (:func:`protean_celery.envelope.message_key`): the id of an event,
    ``<stream>@<position>`` of a command. ``None`` when ``store`` is not the SQL
    event store.
    """
    if not isinstance(store, SQLEventStore):
        return None
    query = select(events.c.position, events.c.id, events.c.type, events.c.metadata, events.c.time).where(
        events.c.stream_name == stream, events.c.position >= start, events.c.position < end
    )
    if types:
        query = query.where(events.c.type.in_(sorted(types)))
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(events.c.position)).all()
    found = []
    for position, message_id, message_type, metadata, time in rows:
        domain = (metadata or {}).get("domain") or {}
        key = f"{stream}@{position}" if domain.get("kind") == "COMMAND" else str(message_id)
        aware = time if time.tzinfo is not None else time.replace(tzinfo=UTC)
        found.append((int(position), key, str(message_type), domain.get("asynchronous") is not False, aware))
    return found
