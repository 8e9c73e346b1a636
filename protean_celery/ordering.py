"""Ordered lanes: an ordered handler handles the messages of one stream one at a time, in stream order.

Celery hands any message to any pool child: two events of one aggregate can run
at once, or the later first (a retry, two children racing on queue order). The
inbox's serialisation (``serial_key``, ``sequential_by``) prevents lost updates
but does not order. A handler with ``ordered = true`` (``[custom.celery]`` for
every handler, ``[custom.celery.handlers.<Name>]`` for one) is ordered:

* **Lane**: ``<handler path>|<stream>``, the stream the message was written to:
  the aggregate's stream (``shop::order-o1``) for events, whichever handler kind
  takes them (event handlers, projectors, process managers), and the command
  stream (``shop::order:command-o1``) for commands. Lanes are rows, not buckets:
  unbounded, and different lanes run in parallel on every child and worker.
* **Commit order** is the message's position in that stream
  (``metadata.event_store.position``): Protean appends every event (outbox on or
  off) and every command to the event store in the committing Unit of Work, so
  the position is gapless and in commit order. A message read from the event
  store carries it; an event relayed from the outbox does not, and its position
  is looked up once by its id (one indexed query on the SQL event store).
* **Turn**: in the handler's Unit of Work, right after the inbox marker, the lane
  moves from ``n - 1`` to ``n`` (:func:`protean_celery.turns.take`). A message
  whose predecessor is in flight waits for that commit (PostgreSQL: the lane's row
  lock; SQLite: the write lock). A message ahead of its turn looks at the
  positions in between: those the handler does not take (other event types, a
  message its producer processed synchronously),
  those it is already done with (an inbox marker: handled, expired, not from its
  ``origin_stream``) and those older than ``inbox_retention_hours`` are passed
  over; any other is missing, and the message raises :class:`OutOfTurn`. The
  task defers it (``tasks/deferral.py``: a short countdown, not a handler retry),
  up to ``ordering_retries`` times, then dead-letters it as ``OrderingGap``
  naming the missing position. A message at or below the lane's position is a
  duplicate.
* **Across streams** nothing is ordered, as in Protean: a process manager's
  instance and a projection row take events of several streams, which are
  serialised by the inbox's lock (the correlation; for an ordered projector, the
  projection's identifier when the event carries a field of that name, so two
  events of one row from different correlation chains never lose an update; or
  ``sequential_by``) and ordered within each stream.

A message without a stream or a findable position (an event from another
producer, a command not yet in the event store) is handled unordered, with a
warning. Ordered lanes need the inbox (a SQL default database).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from protean.utils.eventing import Message
from protean.utils.globals import current_uow
from protean.utils.reflection import id_field

from protean_celery.envelope import describe, message_key, metadata_of
from protean_celery.errors import OutOfTurn
from protean_celery.inbox import AlreadyHandled, Inbox
from protean_celery.positions import stored_between, stored_position
from protean_celery.registry import HandlerKind, HandlerSpec
from protean_celery.sequential import sequential_field
from protean_celery.settings import CelerySettings
from protean_celery.topology import Route, Topology
from protean_celery.turns import marked, settle, take

__all__ = ["Ordering", "PATIENCE", "Turn", "patiently"]

logger = logging.getLogger(__name__)

#: Most positions one look at a gap reads from the stream.
GAP_READ_LIMIT = 1000
#: Pauses (seconds) of a handler task that tries an out-of-turn message again in-process before deferring it.
PATIENCE = (0.01, 0.03, 0.06)

T = TypeVar("T")


def patiently(run: Callable[[], T]) -> T:
    """``run()``, tried again after each pause of :data:`PATIENCE` while it raises :class:`OutOfTurn`.

    Its predecessor is most often being handled by another child right then (a
    burst of one stream): waiting 100 ms at most here is cheaper than a deferral
    through the broker. Nothing is held between attempts (each rolled back).

    Raises:
        OutOfTurn: still out of turn after the last pause.
    """
    for pause in PATIENCE:
        try:
            return run()
        except OutOfTurn:
            time.sleep(pause)
    return run()


class Turn:
    """One message's place in its handler's lane.

    Attributes:
        spec: the handler.
        message: the message.
        lane: ``<handler path>|<stream>``.
    """

    def __init__(self, ordering: Ordering, spec: HandlerSpec, message: Message, lane: str) -> None:
        self.ordering = ordering
        self.spec = spec
        self.message = message
        self.lane = lane

    def guard(self, handle: Callable[[], Any]) -> Callable[[], Any]:
        """``handle`` preceded, in the same Unit of Work, by taking this message's turn.

        Raises (from the returned callable):
            OutOfTurn: a predecessor in the stream is not handled yet.
        """

        def guarded() -> Any:
            self.ordering.take_turn(self)
            return handle()

        return guarded


class Ordering:
    """Which handlers are ordered, and their turns.

    Args:
        domain: the initialised domain.
        settings: protean-celery settings (``ordered`` per handler, ``inbox_retention_hours``).
        topology: the app's routes.
        inbox: the inbox (ordered lanes live in its database).
    """

    def __init__(self, domain: Any, settings: CelerySettings, topology: Topology, inbox: Inbox) -> None:
        self.domain = domain
        self.inbox = inbox
        self.retention = timedelta(hours=settings.inbox_retention_hours)
        self._ordered = {route.task_name for route in topology.routes if _is_ordered(settings, route.spec)}
        self._projection_fields: dict[str, str | None] = {}
        if self._ordered and not inbox.enabled:
            logger.warning("ordered lanes need a SQL default database (the inbox's): handlers run unordered")

    def ordered(self, route: Route) -> bool:
        """Whether ``route``'s handler is ordered (and the inbox can hold its lanes)."""
        return self.inbox.enabled and route.task_name in self._ordered

    def turn(self, route: Route, message: Message) -> Turn | None:
        """``message``'s turn for ``route``'s handler; ``None`` when the handler is not ordered or it has no stream."""
        if not self.ordered(route):
            return None
        stream = str(metadata_of(message).headers.stream or "")
        if not stream:
            logger.warning("%s: %s has no stream, handled unordered", route.spec.name, describe(message))
            return None
        return Turn(self, route.spec, message, f"{route.spec.path}|{stream}")

    def lock(self, route: Route, message: Message, default: str | None) -> str | None:
        """The inbox lock of ``message``: for an ordered projector, its projection's row when the event names it."""
        if not self.ordered(route) or route.spec.kind is not HandlerKind.PROJECTOR:
            return default
        handler_cls = route.spec.handler
        if sequential_field(handler_cls, str(metadata_of(message).headers.type)) is not None:
            return default
        field = self._projection_field(route.spec)
        value = (message.data or {}).get(field) if field else None
        return f"{route.spec.path}|{field}={value}" if value not in (None, "") else default

    def take_turn(self, turn: Turn) -> None:
        """Move ``turn``'s lane to its position, in the current Unit of Work.

        Raises:
            OutOfTurn: a predecessor is neither handled nor to be passed over.
            AlreadyHandled: the lane is already past this position (a duplicate).
        """
        position = self.position(turn.message)
        if position is None:
            logger.warning("%s: %s has no position in its stream, handled unordered", turn.spec.name,
                           describe(turn.message))
            return
        session = current_uow.get_session(self.inbox.provider)
        last = take(session, turn.lane, position)
        if last == position:
            return
        if last is None or last > position:
            logger.info("%s: lane %s is past %s, duplicate", turn.spec.name, turn.lane, describe(turn.message))
            raise AlreadyHandled
        missing = self._first_missing(session, turn, last + 1, position)
        if missing is None and settle(session, turn.lane, last, position):
            return
        missing = last + 1 if missing is None else missing  # the lane moved meanwhile: look again later
        raise OutOfTurn(
            f"{describe(turn.message)} is at position {position} of {turn.lane.partition('|')[2]}, but "
            f"{turn.spec.name} has not handled position {missing} yet",
            lane=turn.lane, position=position, missing=missing,
        )

    def position(self, message: Message) -> int | None:
        """``message``'s position in its stream: from its metadata, else looked up in the event store by id."""
        metadata = metadata_of(message)
        stored = metadata.event_store  # a value object: test it against None (position 0 would be falsy)
        known = stored.position if stored is not None else None
        if known is not None:
            return int(known)
        if getattr(metadata.domain, "kind", None) == "COMMAND":
            return None  # a command's id is its aggregate's: only its stored position identifies it
        return stored_position(self.domain.event_store.store, str(metadata.headers.stream), str(metadata.headers.id))

    def _first_missing(self, session: Any, turn: Turn, start: int, position: int) -> int | None:
        """The first position in ``[start, position)`` of the lane that the handler still has to handle."""
        stream = turn.lane.partition("|")[2]
        horizon = datetime.now(UTC) - self.retention
        for chunk in range(start, position, GAP_READ_LIMIT):
            end = min(chunk + GAP_READ_LIMIT, position)
            waiting = [
                (at, key) for at, key, kind, asynchronous, time in self._between(stream, chunk, end, turn.spec)
                if asynchronous and time >= horizon and turn.spec.accepts(kind)
            ]
            done = marked(session, turn.spec.path, (key for _, key in waiting))
            missing = next((at for at, key in waiting if key not in done), None)
            if missing is not None:
                return missing
        return None

    def _between(self, stream: str, start: int, end: int, spec: HandlerSpec) -> list[tuple[int, str, str, bool, Any]]:
        """``(position, message key, type, asynchronous, time)`` of ``stream``'s messages in ``[start, end)``."""
        store = self.domain.event_store.store
        rows = stored_between(store, stream, start, end, spec.message_types)
        if rows is not None:
            return rows
        found = []
        for message in store.read(stream, position=start, no_of_messages=end - start):
            metadata = metadata_of(message)
            asynchronous = metadata.domain is None or metadata.domain.asynchronous is not False
            position = int(cast(Any, metadata.event_store).position)  # read from the store: it has one
            found.append((position, message_key(message), str(metadata.headers.type), asynchronous,
                          _aware(metadata.headers.time)))
        return found

    def _projection_field(self, spec: HandlerSpec) -> str | None:
        if spec.path not in self._projection_fields:
            projection = getattr(getattr(spec.handler, "meta_", None), "projector_for", None)
            field = id_field(projection) if projection is not None else None
            self._projection_fields[spec.path] = getattr(field, "field_name", None)
        return self._projection_fields[spec.path]


def _is_ordered(settings: CelerySettings, spec: HandlerSpec) -> bool:
    names = {spec.name, *(cls.__name__ for cls in spec.commands.values())}
    return any(bool(settings.for_handler(name).ordered) for name in names)


def _aware(time: datetime | None) -> datetime:
    if time is None:
        return datetime.now(UTC)
    return time if time.tzinfo is not None else time.replace(tzinfo=UTC)
