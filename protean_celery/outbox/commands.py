"""The command half of the relay: Protean 0.18's async commands, from the event store to their tasks (I/O).

Protean 0.18 never puts commands in the outbox: ``domain.process()`` appends them
to the event store. Each command category is read past a durable cursor that the
relay holds locked from reading to publishing to moving it (see ``cursor.py``), so
two relays never publish the same commands. A command that cannot be decoded, or
whose payload is above ``max_payload_bytes``, is dead-lettered under the relay's
commands task and the cursor moves on.

The per-category loop (``_category_batch``) also serves the event store relay of
``events.py`` (Protean's default delivery, with the outbox off), under cursors of its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from protean.utils.eventing import Message

from protean_celery.commits import Committed
from protean_celery.envelope import message_key, metadata_of
from protean_celery.errors import PayloadTooLarge, UnknownHandlerError
from protean_celery.outbox.report import RelayReport
from protean_celery.outbox.rows import command_message, command_rows

__all__ = ["CommandRelay", "command_cursor_name"]

logger = logging.getLogger("protean_celery.outbox.relay")


class CommandRelay:
    """Relays commands past per-category cursors; mixed into :class:`~protean_celery.outbox.relay.Relay`."""

    celery: Any
    domain: Any
    topology: Any
    settings: Any
    cursors: Any
    dead_letters: Any
    #: Which ``(message key, handler path)`` pairs have an inbox marker (set where tasks
    #: continue in-process: a command one of them handled is not published again).
    markers: Callable[[Iterable[tuple[str, str]]], set[tuple[str, str]]] | None = None

    def publish(  # pragma: no cover - Relay's
        self, message: Message, category: str, producer: Any, done: Committed | None = None
    ) -> int:
        raise NotImplementedError

    def _command_batch(
        self, report: RelayReport, categories: list[str] | None, assume_new: bool = False,
        done: Committed | None = None, grace: bool = False,
    ) -> None:
        for category in categories if categories is not None else self.topology.command_categories():
            cursor = command_cursor_name(category)
            report.commands += self._category_batch(
                category, cursor, report, assume_new, commands=True, done=done, grace=grace,
            )

    def _category_batch(
        self, category: str, cursor: str, report: RelayReport, assume_new: bool = False, commands: bool = False,
        done: Committed | None = None, grace: bool = False,
    ) -> int:
        """Publish one batch of the event store rows of ``category`` past ``cursor``; return how many went out.

        Shared by commands and, with the outbox off, events (``events.py``). ``done``: what
        this process handled itself (see ``Relay.publish``); rows a continuing task handled
        (their markers) are skipped too. Rows
        written synchronously (``asynchronous`` false) were handled already and are skipped.
        A command no handler takes is counted in ``report.unrouted`` and, once the cursor
        moved past it, dead-lettered with an ``UnknownHandlerError`` naming its type (an
        event no handler takes is normal: handlers pick the types they want).
        With ``grace`` (beat ticks) the batch ends before the first row younger than
        ``relay_grace_seconds``: the process that committed it relays it, or a task of
        that process is handling it right now (:mod:`protean_celery.continuation`).
        """
        store = self.domain.event_store.store
        young = self._young(grace)
        if not assume_new and not young(command_rows(store, category, self.cursors.position(cursor), 1)):
            return 0  # nothing new (or nothing old enough for a tick): skip the locked round trip
        relayed = 0

        def step(position: int) -> int:
            nonlocal relayed
            rows = young(command_rows(store, category, position, self.settings.relay_batch_size))
            if not rows:
                return position
            decoded = [(row, self._command(row, category, report)) for row in rows]
            known = self._handled_here(category, [message for _, message in decoded if message is not None], done)
            with self.celery.producer_or_acquire() as producer:
                for row, message in decoded:
                    domain_meta = metadata_of(message).domain if message is not None else None
                    if message is None or (domain_meta is not None and not domain_meta.asynchronous):
                        continue
                    try:
                        sent = self.publish(message, category, producer, known)
                    except PayloadTooLarge as exc:  # no retry makes it smaller
                        self._park_command(row, category, exc, report)
                        continue
                    report.tasks += sent
                    relayed += 1
                    if commands and not sent and not self.topology.targets(category, _type(message)):
                        unrouted.append((row, _type(message)))
            return int(rows[-1]["global_position"])

        unrouted: list[tuple[dict[str, Any], str]] = []
        self.cursors.advance(cursor, step)
        self._park_unrouted(unrouted, category, report)  # after the cursor's lock: SQLite has one writer
        return relayed

    def _young(self, grace: bool) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
        """Cuts a batch of rows before its first row younger than ``relay_grace_seconds`` (with ``grace``)."""
        if not grace or self.settings.relay_grace_seconds <= 0:
            return lambda rows: rows
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.relay_grace_seconds)

        def older(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            for index, row in enumerate(rows):
                written = _written(row)
                if written is not None and written > cutoff:
                    return rows[:index]
            return rows

        return older

    def _waiting(self, category: str, cursor: str, limit: int = 1000) -> int:
        """How many event store rows of ``category`` past ``cursor`` still wait for a handler (at most ``limit``).

        Rows every handler of this app already handled (their inbox markers: a
        continuing task ran them, the cursor moves at the next tick) do not wait.
        """
        position = self.cursors.position(cursor)
        rows = command_rows(self.domain.event_store.store, category, position, limit)
        if self.markers is None or not rows:
            return len(rows)
        decoded = []
        for row in rows:
            try:
                decoded.append(command_message(row))
            except Exception:  # the relay dead-letters it: it waits until then
                decoded.append(None)
        known = self._handled_here(category, [message for message in decoded if message is not None], None)
        handled = known.handled if known is not None else set()
        return sum(
            1 for message in decoded
            if message is None or any(
                (route.task_name, message_key(message)) not in handled
                for route in self.topology.targets(category, _type(message))
            )
        )

    def _handled_here(self, category: str, messages: list[Message], done: Committed | None) -> Committed | None:
        """``done`` plus the (task, key) pairs of ``messages`` a continuing task already handled (their markers)."""
        if self.markers is None or not messages:
            return done
        paths: dict[tuple[str, str], str] = {}
        for message in messages:
            key = message_key(message)
            for route in self.topology.targets(category, _type(message)):
                paths[(key, route.spec.path)] = route.task_name
        found = self.markers(list(paths))
        if not found:
            return done
        known = Committed(handled={(paths[pair], pair[0]) for pair in found})
        if done is not None:
            known.handled |= done.handled
            known.retries = done.retries
        return known

    def _command(self, row: dict[str, Any], category: str, report: RelayReport) -> Message | None:
        try:
            return command_message(row)
        except Exception as exc:  # never block the cursor behind one bad row
            self._park_command(row, category, exc, report)
            return None

    def _park_unrouted(self, rows: list[tuple[dict[str, Any], str]], category: str, report: RelayReport) -> None:
        """Dead-letter the commands no handler of this app takes (the cursor moved past them), each named."""
        for row, message_type in rows:
            report.unrouted += 1
            try:
                self._park_command(row, category, _unrouted_error(message_type, category), report)
            except Exception:  # logged by _park_command; the cursor has moved: only the log names it now
                logger.error("relay: %s at global position %s of %r is not handled by any handler of this app",
                             message_type, row.get("global_position"), category)

    def _park_command(self, row: dict[str, Any], category: str, error: Exception, report: RelayReport) -> None:
        """Dead-letter an event store row the relay cannot publish, so the cursor can move past it.

        Raises:
            Exception: the dead-letter store failed; the cursor stays, the batch is retried.
        """
        report.failed += 1
        where = f"message at global position {row.get('global_position')} of {category}"
        payload = json.loads(json.dumps(row, default=str))  # event store rows may hold datetimes
        try:
            entry = self.dead_letters.park(self.topology.relay_tasks["commands"], payload, error)
        except Exception:
            logger.exception("relay: could not dead-letter %s (%s); it will be read again", where, error)
            raise
        logger.warning("relay: %s cannot be published, dead-lettered as %s: %s", where, entry, error)


def _unrouted_error(message_type: str, category: str) -> UnknownHandlerError:
    return UnknownHandlerError(
        f"No command handler of this app takes {message_type} from {category!r}: register one "
        "(@domain.command_handler with @handle for it); this dead letter keeps the command.",
        message_type=message_type,
    )


def command_cursor_name(category: str) -> str:
    """The name of the command relay's cursor for ``category``."""
    return f"commands:{category}"


def _type(message: Message) -> str:
    return str(metadata_of(message).headers.type)


def _written(row: dict[str, Any]) -> datetime | None:
    """When an event store row was written (``time``; naive values are UTC), or None if it does not say."""
    value = row.get("time")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
