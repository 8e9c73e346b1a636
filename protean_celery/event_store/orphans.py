"""Events a crash left between two commits, taken back by the redelivered message.

On an event store in a database of its own (Message DB, or the SQL event store
in another database) Protean appends a handler's events, and they commit, before
its Unit of Work commits the aggregate rows, the outbox rows and the inbox marker
(ADR-0015). A worker killed between the two commits leaves *orphans*: events in
the stream whose aggregate state, outbox rows and marker were never saved. The
message is redelivered and its handler runs again from the saved state, raising
the same events: a state-based aggregate's event id is ``<stream>-<version>.<n>``,
and its version did not move.

:func:`adopt_orphans` wraps the store's writes so that, while a handler runs, an
event whose orphan is already in the stream is not appended again: the orphan's
position is reused, and the Unit of Work goes on to save the aggregate, the
outbox rows (with the stored event's id) and the marker. The events are then in
the stream once, published once, and the message completes. An orphan is taken
for the event being written only when it is that event: the same id (which names
the stream, the aggregate version it was raised from and its number), type and
data, and a ``causation_id`` naming the message being handled. A stream holding
an event of the version its aggregate still has holds it because that state was
never saved; the inbox marker already stops a message whose earlier attempt
committed.

* **A new aggregate** (a stale expected version in general): the append conflicts
  with the orphan (``ExpectedVersionError``, which dead-lettered the message after
  its retries before). The message at the expected position is read, on the
  conflict only, and compared.
* **A loaded aggregate**: Protean sets its expected version from the stream's last
  message, orphans included, so the append would succeed and store the event a
  second time. When that last message (read while loading, remembered for free)
  was raised from the version the aggregate still has, the stream's end is read
  once and the re-run's events are matched with its orphans by id.

Not covered: an event-sourced aggregate loads its orphans as state (its store is
its database), so the re-run sees them as done; a process manager's orphan
transition is recognised before the handler runs (``tasks/process_manager.py``).
Events written outside a handler (an API's ``domain.process``) are not looked at.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from protean.exceptions import ExpectedVersionError
from protean.utils.eventing import Message
from protean.utils.globals import g

__all__ = ["adopt_orphans", "commits_apart"]

logger = logging.getLogger(__name__)

#: How far back from a stream's last message the orphans of one message are looked for.
_TAIL = 50

_TAILS = "_protean_celery_orphan_tails"
_LAST_READ = "_protean_celery_last_read"


@dataclass
class _Tail:
    """The orphans at a stream's end, by message id, and how many of them the re-run reused so far."""

    orphans: dict[str, Message]
    reused: int = field(default=0)


def commits_apart(domain: Any) -> bool:
    """Whether ``domain``'s event store commits apart from its aggregates.

    It does unless it is the SQL event store in the database of a ``[databases]`` provider.
    """
    from protean_celery.event_store.store import SQLEventStore, shared_provider

    store = domain.event_store.store
    return not (isinstance(store, SQLEventStore) and shared_provider(domain, store.engine) is not None)


def adopt_orphans(store: Any) -> None:
    """Make ``store``'s appends reuse this message's orphans (see the module docstring); idempotent.

    Args:
        store: the domain's event store (Protean's ``BaseEventStore``), in a
            database other than the aggregates'.
    """
    if getattr(store, "_adopts_orphans", False):
        return
    write, read_last = store._write, store.read_last_message

    def _write(
        stream_name: str, message_type: str, data: dict[str, Any], metadata: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> int:
        handling = _handling()
        if handling is None or expected_version is None:
            return int(write(stream_name, message_type, data, metadata, expected_version))
        wanted = _Wanted(message_type, data, metadata or {}, handling)
        tail = _tail(store, stream_name, wanted, expected_version)
        if tail is not None:
            orphan = tail.orphans.get(wanted.id)
            if orphan is not None and wanted.matches(orphan):
                tail.reused += 1
                return _reused(stream_name, orphan)
            expected_version -= tail.reused  # the reused orphans already stand in the stream
        try:
            return int(write(stream_name, message_type, data, metadata, expected_version))
        except ExpectedVersionError:
            found = store.read(stream_name, position=expected_version + 1, no_of_messages=1)
            if found and _position(found[0]) == expected_version + 1 and wanted.matches(found[0]):
                return _reused(stream_name, found[0])
            raise

    def read_last_message(stream: str) -> Message | None:
        last = read_last(stream)
        if last is not None and _handling() is not None:
            _state(_LAST_READ)[stream] = last  # Protean read it to set a loaded aggregate's expected version
            _state(_TAILS).pop(stream, None)  # a reload (the version retry's next attempt) starts over
        return last

    store._write, store.read_last_message = _write, read_last_message
    store._adopts_orphans = True


@dataclass(frozen=True)
class _Wanted:
    """The event being appended, as an orphan of it would have been stored."""

    message_type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    handling: str

    @property
    def id(self) -> str:
        return str((self.metadata.get("headers") or {}).get("id"))

    def matches(self, stored: Message) -> bool:
        return (
            stored.metadata is not None
            and stored.metadata.headers.type == self.message_type
            and stored.metadata.headers.id == self.id
            and _caused_by(stored, self.handling)
            and _canonical(stored.data) == _canonical(self.data)
        )


def _tail(store: Any, stream: str, wanted: _Wanted, expected_version: int) -> _Tail | None:
    """The orphans raised from the same aggregate version as ``wanted``, when the stream ends with some.

    A state-based aggregate's events are ``<stream>-<version>.<n>``: a stream whose
    last message (read when the aggregate was loaded) carries the version the
    aggregate still has ends with events whose state was never saved. Read once
    per stream and message, and only then.
    """
    tails = _state(_TAILS)
    if stream in tails:
        return tails[stream]
    last = _state(_LAST_READ).get(stream)
    version = _version_part(wanted.id)
    if last is None or version is None or _position(last) != expected_version:
        return None
    if _version_part(_id(last)) != version:
        return None
    earlier = store.read(stream, position=max(0, expected_version - _TAIL), no_of_messages=_TAIL + 1)
    orphans = {_id(message): message for message in earlier if _version_part(_id(message)) == version}
    tails[stream] = _Tail(orphans)
    return tails[stream]


def _reused(stream: str, orphan: Message) -> int:
    position = _position(orphan)
    logger.info("event %s at %s position %d: left by an earlier attempt of this message that died before its "
                "Unit of Work committed; reused", _id(orphan), stream, position)
    return position


def _handling() -> str | None:
    """The id of the message a handler is running for, if any (``g.message_in_context``)."""
    try:
        message = getattr(g, "message_in_context", None)
    except RuntimeError:  # outside a domain context: no handler runs
        return None
    headers = message.metadata.headers if message is not None and message.metadata else None
    return str(headers.id) if headers is not None and headers.id else None


def _state(name: str) -> dict[str, Any]:
    """A dict kept for the message being handled (``g`` lives as long as its domain context)."""
    found = getattr(g, name, None)
    if found is None:
        found = {}
        setattr(g, name, found)
    return found


def _version_part(message_id: str) -> str | None:
    """``<stream>-<version>`` of a state-based aggregate's event id ``<stream>-<version>.<n>``; None otherwise."""
    head, dot, number = message_id.rpartition(".")
    return head if dot and number.isdigit() else None


def _id(message: Message) -> str:
    return str(message.metadata.headers.id) if message.metadata and message.metadata.headers else ""


def _caused_by(message: Message, handling: str) -> bool:
    domain = message.metadata.domain if message.metadata else None
    return domain is not None and domain.causation_id == handling


def _position(message: Message) -> int:
    store = message.metadata.event_store if message.metadata else None
    return int(store.position) if store is not None and store.position is not None else -1


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)
