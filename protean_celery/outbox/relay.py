"""The relay: Protean's outbox and the event store's commands → Celery tasks (I/O).

* **Events.** Protean writes outbox rows in the handler's Unit of Work. The relay
  claims a batch with Protean's ``claim_batch`` (outside any UoW; ``SKIP LOCKED``
  on PostgreSQL, a guarded update elsewhere), publishes one task message per
  subscribed handler, then marks the rows published, or failed with backoff.
  A failure writes ``[outbox.retry] max_attempts`` onto the row's ``max_retries``
  so claiming and retrying agree: after that many attempts the row is ABANDONED
  with its error, never stranded in FAILED (``protean outbox`` lists and
  requeues such rows).
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
Beat runs the relay every ``relay_interval``; handler tasks nudge it after
they commit so messages leave within milliseconds.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import Any

from protean.core.unit_of_work import UnitOfWork
from protean.utils.eventing import Message
from protean.utils.outbox import OutboxStatus
from protean.utils.query import Q

from protean_celery.deadletter import DeadLetters
from protean_celery.eager import EagerCascade, settles
from protean_celery.envelope import encode, message_key, metadata_of, task_id
from protean_celery.errors import RelayError
from protean_celery.flower import argsrepr
from protean_celery.intake import check_size
from protean_celery.outbox.admin import counts, max_attempts
from protean_celery.outbox.admin import providers as outbox_providers
from protean_celery.outbox.commands import CommandRelay, command_cursor_name
from protean_celery.outbox.cursor import CursorStore
from protean_celery.outbox.events import EventStoreRelay
from protean_celery.outbox.report import RelayReport
from protean_celery.outbox.rows import outbox_message
from protean_celery.protean_api import outbox_claim, outbox_eligible, outbox_model, outbox_repo, outbox_update
from protean_celery.settings import CelerySettings
from protean_celery.topology import Route, Topology

__all__ = ["Relay", "RelayReport", "command_cursor_name"]

logger = logging.getLogger(__name__)


class Relay(CommandRelay, EventStoreRelay):
    """Relays outbox rows and commands of one domain to its handler tasks.

    Args:
        celery: the Celery app to publish with.
        domain: the initialised Protean domain.
        topology: the domain's topology.
        settings: protean-celery settings (batch size, lock time).
        cursors: where the command relay keeps its cursors.
        dead_letters: where commands it cannot publish go.
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
    ) -> RelayReport:
        """Relay until nothing is pending or ``max_batches`` round trips were made.

        Args:
            providers: the outbox providers to relay (default: every one).
            events: relay outbox rows.
            commands: relay commands from the event store: all categories, or the listed ones.
            stored_events: with the outbox off, relay events from the event store (``events.py``):
                all categories, or the listed ones; ``None`` does so whenever ``commands`` is true.
            max_batches: round trips at most (default ``relay_max_batches``).
            grace: leave outbox rows younger than ``relay_grace_seconds`` to the fast
                path of the process that committed them (beat ticks).
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
                    self._command_batch(report, listed, assume_new=listed is not None and batch == 0)
                self._stored_event_batch(report, commands if stored_events is None else stored_events, batch)
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
    def publish_committed(self, rows: list[Any]) -> int:
        """Publish outbox rows a commit of this process just wrote, by id, without claiming them.

        ``rows`` are Protean's outbox database models, as flushed. Each is published
        and then marked published in one statement per provider, guarded on
        ``pending``: a row a tick relay claimed meanwhile keeps that relay's outcome
        (both copies carry one task id; the inbox absorbs the second). A row that
        fails to publish (too large, say) stays pending for the tick, which records why;
        when the broker goes down the rows already sent are still marked. Rows for an external broker
        are left to that broker's relay. Returns how many rows were published.
        """
        models = self._models()
        published: dict[str, list[Any]] = {}
        with self.domain.domain_context():
            try:
                with self.celery.producer_or_acquire() as producer:
                    for row in rows:
                        provider = models.get(type(row))
                        if provider is None or row.target_broker != self.internal_broker:
                            continue
                        entity = type(row).to_entity(row)
                        try:
                            self.publish(*outbox_message(entity), producer)
                        except Exception as exc:
                            if _broker_down(exc):
                                raise
                            # This row only (too large, say): the tick claims it and records why.
                            logger.warning("relay: outbox row %s left to the next tick: %s", entity.id, exc)
                            continue
                        published.setdefault(provider, []).append(entity.id)
            finally:
                self._mark_published(published)  # what went out before the broker went down, too
        return sum(len(ids) for ids in published.values())

    def _mark_published(self, published: dict[str, list[Any]]) -> None:
        now = self.domain.clock.now()
        for provider, ids in published.items():
            outbox_update(
                outbox_repo(self.domain, provider), Q(id__in=ids) & Q(status=OutboxStatus.PENDING.value),
                status=OutboxStatus.PUBLISHED.value, published_at=now, last_processed_at=now,
            )

    @property
    def internal_broker(self) -> str:
        """The broker name Protean writes on internal outbox rows (``[outbox] broker``)."""
        from protean.utils.outbox import DEFAULT_TARGET_BROKER

        return str(self.domain.config.get("outbox", {}).get("broker", DEFAULT_TARGET_BROKER))

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
            rows = self._claim(repo, grace)
            if not rows:
                continue
            outcomes = self._publish_rows(rows, report)
            self._record(repo, outcomes)
            report.events += sum(1 for error in outcomes.values() if error is None)
            report.failed += sum(1 for error in outcomes.values() if error is not None)

    def _claim(self, repo: Any, grace: bool) -> list[Any]:
        """Claim a batch of this relay's rows (internal broker only), as Protean's ``claim_batch`` does.

        With ``grace``, rows younger than ``relay_grace_seconds`` are left to the
        fast path that is publishing them by id (``publish_committed``).
        """
        seconds = self.settings.relay_grace_seconds if grace else 0.0
        if seconds <= 0:
            return list(repo.claim_batch(
                self.worker_id, self.settings.relay_batch_size, target_broker=self.internal_broker,
                lock_duration_minutes=self.settings.lock_minutes,
            ))
        now = self.domain.clock.now()
        criteria = outbox_eligible(repo, now, self.internal_broker) & Q(
            created_at__lt=now - timedelta(seconds=seconds)
        )
        return outbox_claim(
            repo,
            criteria,
            {
                "status": OutboxStatus.PROCESSING.value,
                "locked_by": self.worker_id,
                "locked_until": now + timedelta(minutes=self.settings.lock_minutes),
                "last_processed_at": now,
            },
            limit=self.settings.relay_batch_size,
            order_by="-priority",
        )

    def _publish_rows(self, rows: list[Any], report: RelayReport) -> dict[Any, Exception | None]:
        outcomes: dict[Any, Exception | None] = {}
        try:
            with self.celery.producer_or_acquire() as producer:
                for row in rows:
                    try:
                        message, category = outbox_message(row)
                        report.tasks += self.publish(message, category, producer)
                        outcomes[row.id] = None
                    except Exception as exc:
                        if _broker_down(exc):
                            raise
                        logger.warning("relay: publishing outbox row %s failed: %s", row.id, exc)
                        outcomes[row.id] = exc  # recorded on the row, retried with backoff
        except Exception as exc:
            if not _broker_down(exc):
                raise
            # The broker is unreachable: no row is at fault. The rows not yet published
            # go back unclaimed with their attempts untouched; the next tick retries them.
            for row in rows:
                outcomes.setdefault(row.id, _Unreachable(str(exc)))
        return outcomes

    def _record(self, repo: Any, outcomes: dict[Any, Exception | None]) -> None:
        now = self.domain.clock.now()
        published = [row_id for row_id, error in outcomes.items() if error is None]
        if published:
            # One guarded bulk update (the DAO's infrastructure path for the
            # outbox): only rows still locked by this relay become PUBLISHED.
            outbox_update(
                repo,
                Q(id__in=published) & Q(locked_by=self.worker_id),
                status=OutboxStatus.PUBLISHED.value,
                published_at=now,
                last_processed_at=now,
                last_error=None,
                locked_by=None,
                locked_until=None,
            )
        unreachable = [row_id for row_id, error in outcomes.items() if isinstance(error, _Unreachable)]
        if unreachable:
            outbox_update(
                repo,
                Q(id__in=unreachable) & Q(locked_by=self.worker_id),
                status=OutboxStatus.PENDING.value,
                locked_by=None,
                locked_until=None,
            )
        failed = {
            row_id: error for row_id, error in outcomes.items()
            if error is not None and not isinstance(error, _Unreachable)
        }
        if failed:
            self._record_failures(repo, failed, now)
        if unreachable:
            raise RelayError(
                f"The broker is unreachable; {len(unreachable)} outbox row(s) stay pending for the next relay tick: "
                f"{outcomes[unreachable[0]]}"
            )

    def _record_failures(self, repo: Any, failed: dict[Any, Exception], now: Any) -> None:
        base_delay = int(self.domain.config["outbox"]["retry"].get("base_delay_seconds", 1))
        attempts = max_attempts(self.domain)
        with UnitOfWork():
            for row_id, error in failed.items():
                row = repo.get(row_id)
                if row.locked_by != self.worker_id:
                    continue  # our claim expired and another relay took the row: its outcome stands
                # [outbox.retry] max_attempts goes onto the row too: claim_batch
                # stops claiming at retry_count == max_retries (the column, always
                # 3 when Protean writes it), so the two must agree or the row is
                # stuck in FAILED. The last attempt's failure makes it ABANDONED.
                row.max_retries = attempts
                row.mark_failed(error, base_delay_seconds=base_delay, max_retries=attempts, now=now)
                repo.add(row)

    # -- publishing -------------------------------------------------------------

    def publish(self, message: Message, category: str, producer: Any) -> int:
        """Publish ``message`` to every handler task that takes it; return how many.

        Raises:
            PayloadTooLarge: the encoded message is above ``max_payload_bytes``.
            RelayError: the broker refused the message.
        """
        message_type = str(metadata_of(message).headers.type)
        routes = self.topology.targets(category, message_type)
        if not routes:
            return 0
        payload = encode(message)
        check_size(payload, self.settings.max_payload_bytes, f"relay of {message_type} to {category!r}")
        key = message_key(message)
        shown = argsrepr(message)
        try:
            for route in routes:
                self.send(route, payload, key, category, producer, shown)
        except Exception as exc:
            raise RelayError(f"Publishing {message_type} to {category!r} failed: {exc}") from exc
        return len(routes)

    def send(
        self, route: Route, payload: Any, key: str, category: str, producer: Any, shown: str | None = None
    ) -> None:
        """Publish one task message: ``payload`` to the handler task of ``route`` only.

        The task id is derived from the task and the message key, so every copy
        of a message for one handler has the same id. ``shown`` is what Flower and
        ``celery inspect`` show as its arguments (never payload data: see
        :mod:`protean_celery.flower`). In eager mode it is applied here instead (:mod:`protean_celery.eager`).
        """
        if self.cascade is not None and self.cascade.defer(route.task_name, payload, task_id(route.task_name, key)):
            return
        self.celery.send_task(
            route.task_name,
            args=(payload,),
            task_id=task_id(route.task_name, key),
            exchange=route.exchange,
            routing_key=category,
            declare=[route.queue],
            producer=producer,
            retry=True,
            argsrepr=shown if shown is not None else argsrepr(payload),
            kwargsrepr="{}",
        )


class _Unreachable(Exception):
    """The broker could not be reached while publishing an outbox row (not the row's fault)."""


def _broker_down(exc: BaseException) -> bool:
    """Whether ``exc`` means the broker is unreachable (a connection or timeout error in its chain)."""
    from protean_celery.tasks.retry import Failure, classify

    return classify(exc) is Failure.TRANSIENT
