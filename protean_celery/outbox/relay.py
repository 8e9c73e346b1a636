"""The relay: Protean's outbox and the event store's commands → Celery tasks (I/O).

* **Events.** Protean writes outbox rows in the handler's Unit of Work. The relay
  claims a batch with Protean's ``claim_batch`` (outside any UoW; ``SKIP LOCKED``
  on PostgreSQL, a guarded update elsewhere), publishes one task message per
  subscribed handler, then marks the rows published, or failed with backoff.
  A failure writes ``[outbox.retry] max_attempts`` onto the row's ``max_retries``
  so claiming and retrying agree: after that many attempts the row is ABANDONED
  with its error, never stranded in FAILED (``protean outbox`` lists and
  requeues such rows). Claiming and marking live in ``claims.py``; only this
  domain's rows are ever claimed or marked, so domains can share a database.
* **External brokers.** Rows Protean writes for ``[outbox] external_brokers`` go
  to that broker through Protean's adapter, never to a task (see ``external.py``).
* **Commands.** Protean 0.18 appends async commands to the event store only; the
  relay reads each command category past a locked cursor (see ``cursor.py``).
  A command that cannot be decoded, or whose payload is above ``max_payload_bytes``,
  is dead-lettered under the relay's commands task and the cursor moves on.
* **Events, outbox off.** Protean's default delivery: events read from the event
  store past a cursor per category, as commands are (see ``events.py``).

An outbox row whose payload is above ``max_payload_bytes`` is never published:
it is marked failed with ``PayloadTooLarge`` (retried with backoff, so raising
the limit lets it through, then abandoned), never dropped.

Both paths are at-least-once: a crash between publishing and recording it
re-publishes that batch (after the claim lock expires, for outbox rows).
Beat runs the relay every ``relay_interval``; the fast path (``commits.py``)
publishes what each commit wrote right after it.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from protean.utils.eventing import Message

from protean_celery.commits import Committed
from protean_celery.deadletter import DeadLetters
from protean_celery.eager import EagerCascade, settles
from protean_celery.envelope import encode, message_key, metadata_of, task_id
from protean_celery.errors import RelayError
from protean_celery.flower import argsrepr
from protean_celery.intake import check_size
from protean_celery.outbox.admin import counts
from protean_celery.outbox.admin import providers as outbox_providers
from protean_celery.outbox.claims import Unreachable, broker_down
from protean_celery.outbox.commands import CommandRelay, command_cursor_name
from protean_celery.outbox.cursor import CursorStore
from protean_celery.outbox.events import EventStoreRelay
from protean_celery.outbox.external import ExternalRelay, external_brokers
from protean_celery.outbox.report import RelayReport
from protean_celery.outbox.rows import internal_broker, outbox_message
from protean_celery.protean_api import outbox_model, outbox_repo
from protean_celery.settings import CelerySettings
from protean_celery.topology import Route, Topology
from protean_celery.traces.events import relayed

__all__ = ["Relay", "RelayReport", "command_cursor_name"]

logger = logging.getLogger(__name__)


class Relay(CommandRelay, EventStoreRelay, ExternalRelay):
    """Relays outbox rows and commands of one domain to its handler tasks.

    Args:
        celery: the Celery app to publish with.
        domain: the initialised Protean domain.
        topology: the domain's topology.
        settings: protean-celery settings (batch size, lock time).
        cursors: where the command relay keeps its cursors.
        dead_letters: where commands it cannot publish go.

    Raises:
        ConfigurationError: ``[outbox] external_brokers`` names a broker ``[brokers]`` does not configure.
    """

    #: Eager mode: applies the tasks this relay would publish (set by the runtime; see ``eager.py``).
    cascade: EagerCascade | None = None

    def __init__(
        self,
        celery: Any,
        domain: Any,
        topology: Topology,
        settings: CelerySettings,
        cursors: CursorStore,
        dead_letters: DeadLetters,
    ) -> None:
        self.celery = celery
        self.domain = domain
        self.topology = topology
        self.settings = settings
        self.cursors = cursors
        self.dead_letters = dead_letters
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.externals = external_brokers(domain)
        self._outbox_models: dict[type, str] | None = None

    @settles
    def run(
        self,
        *,
        providers: list[str] | None = None,
        events: bool = True,
        commands: bool | list[str] = True,
        stored_events: bool | list[str] | None = None,
        max_batches: int | None = None,
        grace: bool = False,
        done: Committed | None = None,
    ) -> RelayReport:
        """Relay until nothing is pending or ``max_batches`` round trips were made.

        Args:
            providers: the outbox providers to relay (default: every one).
            events: relay outbox rows.
            commands: relay commands from the event store: all categories, or the listed ones.
            stored_events: with the outbox off, relay events from the event store (``events.py``):
                all categories, or the listed ones; ``None`` does so whenever ``commands`` is true.
            max_batches: round trips at most (default ``relay_max_batches``).
            grace: leave outbox rows and commands younger than ``relay_grace_seconds`` to
                the fast path of the process that committed them (beat ticks).
            done: what this process handled itself (see :meth:`publish`).
        """
        report = RelayReport()
        budget = max_batches or self.settings.relay_max_batches
        with self.domain.domain_context():
            chosen = outbox_providers(self.domain) if providers is None else providers
            for batch in range(budget):
                moved = report.moved
                if events:
                    self._outbox_batch(chosen, report, grace)
                if commands:
                    # Listed categories were just appended to: skip the peek once.
                    listed = None if commands is True else commands
                    self._command_batch(
                        report, listed, assume_new=listed is not None and batch == 0, done=done, grace=grace,
                    )
                self._stored_event_batch(
                    report, commands if stored_events is None else stored_events, batch, done=done, grace=grace,
                )
                if report.moved == moved:
                    break
        return report

    def pending(self) -> int:
        """Outbox rows still to publish plus commands and stored events past the cursors (for drains).

        Stuck rows (FAILED with no retries left) are left out: no relay run
        publishes them until ``protean outbox requeue`` resets them.
        """
        total = sum(
            by_status["pending"] + by_status["processing"] + by_status["failed"]  # "failed" leaves out stuck rows
            for by_status in counts(self.domain).values()
        )
        with self.domain.domain_context():
            for category in self.topology.command_categories():
                total += self._waiting(category, command_cursor_name(category))
            return total + self._stored_events_waiting()

    # -- events -----------------------------------------------------------------

    def outbox_models(self) -> tuple[type, ...]:
        """The database model classes of the domain's outbox tables (what a commit's rows are)."""
        with self.domain.domain_context():
            return tuple(self._models())

    @settles
    def publish_committed(self, rows: list[Any], done: Committed | None = None) -> int:
        """Publish outbox rows a commit of this process just wrote, by id; returns how many were published.

        ``rows`` are Protean's outbox database models, as flushed. Rows for the
        internal broker are published without a claim, then marked published in one
        statement per provider, guarded on ``pending``: a row a tick relay claimed
        meanwhile keeps that relay's outcome (both copies carry one task id; the
        inbox absorbs the second). A row that fails to publish (too large, say) stays
        pending for the tick, which records why; when the broker goes down the rows
        already sent are still marked. Rows for an external broker go to it, claimed
        by id first (``external.py``), even when the Celery broker is down.
        """
        models = self._models()
        known = done.decoded if done is not None else {}  # rows a continuing task decoded already
        with self.domain.domain_context():
            internal: list[tuple[str, Any, tuple[Message, str] | None]] = []
            external: list[tuple[str, Any]] = []
            for row in rows:
                if type(row) not in models:
                    continue
                decoded = known.get(id(row))
                entity = decoded[0] if decoded is not None else type(row).to_entity(row)
                if row.target_broker == self.internal_broker:
                    internal.append((models[type(row)], entity, decoded[1:] if decoded is not None else None))
                else:
                    external.append((models[type(row)], entity))
            sent = 0
            try:
                sent += self._publish_internal_committed(internal, done)
            finally:
                sent += self._publish_external_committed(external) if external else 0
            return sent

    def _publish_internal_committed(
        self, rows: list[tuple[str, Any, tuple[Message, str] | None]], done: Committed | None,
    ) -> int:
        published: dict[str, list[Any]] = {}
        try:
            with self.celery.producer_or_acquire() as producer:
                for provider, row, decoded in rows:
                    try:
                        message, category = decoded if decoded is not None else outbox_message(row)
                        self.publish(message, category, producer, done, priority=row.priority)
                    except Exception as exc:
                        if broker_down(exc):
                            raise
                        # This row only (too large, say): the tick claims it and records why.
                        logger.warning("relay: outbox row %s left to the next tick: %s", row.id, exc)
                        continue
                    published.setdefault(provider, []).append(row.id)
                    relayed(self.domain, [row], {row.id: None}, self.worker_id)
        finally:
            self._mark_published(published)  # what went out before the broker went down, too
        return sum(len(ids) for ids in published.values())

    @property
    def internal_broker(self) -> str:
        """The broker name Protean writes on internal outbox rows (``[outbox] broker``)."""
        return internal_broker(self.domain)

    def _models(self) -> dict[type, str]:
        if self._outbox_models is None:
            self._outbox_models = {
                outbox_model(self.domain, name): name
                for name in outbox_providers(self.domain)
            }
        return self._outbox_models

    def _outbox_batch(self, providers: list[str], report: RelayReport, grace: bool = False) -> None:
        for provider in providers:
            repo = outbox_repo(self.domain, provider)
            rows = self._claim(repo, self.internal_broker, grace)
            if rows:
                outcomes = self._publish_rows(rows, report)
                relayed(self.domain, rows, outcomes, self.worker_id)
                self._record(repo, outcomes)
                report.events += sum(1 for error in outcomes.values() if error is None)
                report.failed += sum(1 for error in outcomes.values() if error is not None)
            self._external_batch(provider, report, grace)

    def _publish_rows(self, rows: list[Any], report: RelayReport) -> dict[Any, Exception | None]:
        outcomes: dict[Any, Exception | None] = {}
        try:
            with self.celery.producer_or_acquire() as producer:
                for row in rows:
                    try:
                        message, category = outbox_message(row)
                        report.tasks += self.publish(message, category, producer, priority=row.priority)
                        outcomes[row.id] = None
                    except Exception as exc:
                        if broker_down(exc):
                            raise
                        logger.warning("relay: publishing outbox row %s failed: %s", row.id, exc)
                        outcomes[row.id] = exc  # recorded on the row, retried with backoff
        except Exception as exc:
            if not broker_down(exc):
                raise
            # The broker is unreachable: no row is at fault. The rows not yet published
            # go back unclaimed with their attempts untouched; the next tick retries them.
            for row in rows:
                outcomes.setdefault(row.id, Unreachable(str(exc)))
        return outcomes

    # -- publishing -------------------------------------------------------------

    def publish(
        self, message: Message, category: str, producer: Any, done: Committed | None = None,
        priority: int | None = None,
    ) -> int:
        """Publish ``message`` to every handler task that takes it; return how many.

        ``done`` names the handlers that already handled it in this process (no task
        is published for them) and those whose attempt here failed (published as
        their first retry): see :mod:`protean_celery.continuation`. ``priority`` is
        the outbox row's; a command carries its own in its metadata. With priority
        lanes on, below the threshold the message goes to each handler's backfill lane.

        Raises:
            PayloadTooLarge: the encoded message is above ``max_payload_bytes``.
            RelayError: the broker refused the message.
        """
        message_type = str(metadata_of(message).headers.type)
        routes = self.topology.targets(category, message_type)
        key = message_key(message)
        if done is not None:
            routes = tuple(route for route in routes if (route.task_name, key) not in done.handled)
        if not routes:
            return 0
        payload = encode(message)
        check_size(payload, self.settings.max_payload_bytes, f"relay of {message_type} to {category!r}")
        shown = argsrepr(message)
        lanes = self.topology.lanes
        if priority is None:
            priority = getattr(metadata_of(message).domain, "priority", None)
        backfill = lanes is not None and lanes.backfill(priority)
        try:
            for route in routes:
                retry_in = done.retries.get((route.task_name, key)) if done is not None else None
                self.send(route, payload, key, category, producer, shown, retry_in, backfill=backfill)
        except Exception as exc:
            raise RelayError(f"Publishing {message_type} to {category!r} failed: {exc}") from exc
        return len(routes)

    def send(
        self, route: Route, payload: Any, key: str, category: str, producer: Any, shown: str | None = None,
        retry_in: float | None = None, *, backfill: bool = False,
    ) -> None:
        """Publish one task message: ``payload`` to the handler task of ``route`` only.

        The task id is derived from the task and the message key, so every copy
        of a message for one handler has the same id. ``shown`` is what Flower and
        ``celery inspect`` show as its arguments (never payload data: see
        :mod:`protean_celery.flower`). With ``retry_in`` it goes out as the first retry of a failed
        attempt, after that many seconds. With ``backfill`` it goes to the handler's
        backfill lane, when priority lanes are on (:mod:`protean_celery.lanes`).
        In eager mode it is applied here instead (:mod:`protean_celery.eager`).
        """
        if self.cascade is not None and self.cascade.defer(route.task_name, payload, task_id(route.task_name, key)):
            return
        exchange, queue = route.lane(backfill)
        self.celery.send_task(
            route.task_name,
            args=(payload,),
            task_id=task_id(route.task_name, key),
            exchange=exchange,
            routing_key=category,
            declare=[queue],
            producer=producer,
            retry=True,
            **({"retries": 1, "countdown": retry_in} if retry_in is not None else {}),
            argsrepr=shown if shown is not None else argsrepr(payload),
            kwargsrepr="{}",
        )
