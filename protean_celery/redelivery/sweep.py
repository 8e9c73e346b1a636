"""The redelivery sweep: a relayed message that vanished is published again (I/O).

The relay publishes at least once, and the inbox absorbs the copies; what it
cannot absorb is a message that is gone. Kombu's Redis transport takes a
message off its queue (``BRPOP``) and only then records it as unacknowledged:
a worker killed, or a Redis server killed, between the two loses it
(celery/celery#7950). A Redis server without ``appendfsync always`` loses what
it had not written. The sweep closes that gap from the database, which knows
what every handler should have received:

* each run reads what the relay published since its last run (outbox rows per
  provider by ``published_at``; commands per category by global position, up
  to the command relay's cursor) once it is ``redeliver_after`` seconds old;
* a message whose handler has an inbox marker, or a dead letter, is settled;
* one that is still somewhere (the broker adapter's ``locate``, see
  :mod:`protean_celery.broker`) is *watched* (the ledger) and checked again
  on every run;
* one that is nowhere is republished, to that handler only, with its usual
  task id; after ``redelivery_attempts`` republications it is dead-lettered
  with :class:`MessageLost`, never dropped.

Before that, on Redis, each run puts back on their queues the unacknowledged
messages older than ``redeliver_after`` that no worker holds (see
:mod:`protean_celery.broker.redis`), instead of leaving them to Kombu's
``visibility_timeout``.

Messages relayed more than ``sweep_horizon_hours`` ago are left alone (their
inbox markers may be pruned). Beat runs ``<prefix>.<domain>.relay.sweep``
every ``sweep_interval`` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from protean_celery.broker import broker_for
from protean_celery.deadletter import DeadLetters
from protean_celery.envelope import task_id
from protean_celery.errors import MessageLost
from protean_celery.inbox import Inbox
from protean_celery.outbox.admin import providers as outbox_providers
from protean_celery.outbox.cursor import CursorStore
from protean_celery.outbox.events import event_cursor_name
from protean_celery.outbox.relay import Relay
from protean_celery.redelivery.ledger import Ledger, Watch
from protean_celery.redelivery.sources import Batch, read_commands, read_outbox
from protean_celery.settings import CelerySettings
from protean_celery.topology import Topology

if TYPE_CHECKING:
    from protean_celery.state import StateDatabase

__all__ = ["Sweep", "SweepReport"]

logger = logging.getLogger(__name__)

#: Reads per source and run at most (each of up to ``sources.SCAN_BATCH`` rows).
SCAN_BATCHES = 20


@dataclass
class SweepReport:
    """What one sweep run did.

    Attributes:
        checked: (message, handler) pairs read for the first time.
        watched: pairs still on their way, watched until settled.
        settled: watched pairs now handled or dead-lettered.
        redelivered: pairs republished because no copy was left.
        dead_lettered: pairs dead-lettered after ``redelivery_attempts`` republications.
        reclaimed: Redis unacked messages no worker held, put back on their queues.
    """

    checked: int = 0
    watched: int = 0
    settled: int = 0
    redelivered: int = 0
    dead_lettered: int = 0
    reclaimed: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts, for the task result and the log line."""
        return dict(self.__dict__)


class Sweep:
    """Finds relayed messages no handler got, and publishes them again.

    It reads what the relay published, so it shares the relay's collaborators.

    Args:
        relay: publishes the copies; its Celery app (broker searches, worker
            queries), domain, topology and settings (``redeliver_after``, horizon,
            attempts) are the sweep's.
        state: the state database: the scan positions (next to the relay's
            cursors), the dead letters, the watched messages.
        inbox: the handlers' markers.
    """

    def __init__(self, relay: Relay, state: StateDatabase, inbox: Inbox) -> None:
        self.relay = relay
        self.celery: Any = relay.celery
        self.domain: Any = relay.domain
        self.topology: Topology = relay.topology
        self.settings: CelerySettings = relay.settings
        self.cursors: CursorStore = state.cursors
        self.dead_letters: DeadLetters = state.dead_letters
        self.ledger: Ledger = state.ledger
        self.inbox = inbox

    @property
    def enabled(self) -> bool:
        """The sweep needs inbox markers (a SQL default database) and a positive ``sweep_interval``."""
        return self.inbox.enabled and self.settings.sweep_interval > 0

    def run(self, now: datetime | None = None) -> SweepReport:
        """Check the watched messages and what was relayed since the last run, with one broker search per round.

        Each source's position moves only after its pairs were settled, watched or
        republished (a crash in between reads them again), and outside the reading:
        on SQLite, holding the cursor's lock would lock the ledger's database too.
        Two sweeps at once may both republish a lost message; the inbox absorbs that.
        """
        report = SweepReport()
        if not self.enabled:
            return report
        now = now or datetime.now(UTC)
        try:
            report.reclaimed = len(broker_for(self.celery).reclaim(self.settings.redeliver_after))
        except Exception as exc:  # the broker is down: Kombu's visibility timeout still applies
            logger.warning("redelivery sweep: reclaiming unacknowledged messages failed: %r", exc)
        with self.domain.domain_context():
            sources = self._sources(now)
            positions = {name: self.cursors.position(name) for name in sources}
            watched = self.ledger.all()
            for _round in range(SCAN_BATCHES):
                batches = {name: read(positions[name]) for name, read in sources.items()}
                self._settle(watched, [item for batch in batches.values() for item in batch.items], now, report)
                watched = []
                for name, batch in batches.items():
                    if batch.position != positions[name]:
                        self.cursors.advance(name, partial(max, batch.position))
                sources = {
                    name: sources[name] for name, batch in batches.items()
                    if batch.full and batch.position != positions[name]
                }
                positions.update({name: batch.position for name, batch in batches.items()})
                if not sources:
                    break
        if report.redelivered or report.dead_lettered or report.reclaimed:
            logger.warning("redelivery sweep: %s", report.as_dict())
        return report

    def _sources(self, now: datetime) -> dict[str, Callable[[int], Batch]]:
        sources: dict[str, Callable[[int], Batch]] = {}
        for provider in outbox_providers(self.domain):
            sources[f"sweep:outbox:{provider}"] = partial(self._read_outbox, provider, now)
        for category in self.topology.command_categories():
            sources[f"sweep:commands:{category}"] = partial(self._read_commands, category, now)
        for category in self.relay.event_categories():  # the outbox is off: events from the event store
            cursor = event_cursor_name(category)
            sources[f"sweep:events:{category}"] = partial(self._read_commands, category, now, relay_cursor=cursor)
        return sources

    def _read_outbox(self, provider: str, now: datetime, mark: int) -> Batch:
        return read_outbox(self.domain, self.topology, self.settings, provider, mark, now)

    def _read_commands(self, category: str, now: datetime, position: int, relay_cursor: str | None = None) -> Batch:
        return read_commands(
            self.domain, self.topology, self.settings, self.cursors, category, position, now, relay_cursor
        )

    # -- settling ------------------------------------------------------------------

    def _settle(self, watched: list[Watch], fresh: list[Watch], now: datetime, report: SweepReport) -> None:
        """Settle, watch or republish each pair: ``watched`` come from the ledger, ``fresh`` were just read."""
        report.checked += len(fresh)
        known = [item for item in watched if self._known(item)]
        self.ledger.forget(_without(watched, known))
        from_ledger = {(item.task, item.key) for item in known}
        # A pair read again (a re-read timestamp) that the ledger already has keeps its ledger entry.
        items = known + [item for item in fresh if (item.task, item.key) not in from_ledger]
        open_items = self._unsettled(items)
        self._forget_settled(_without(known, open_items), report)
        if not open_items:
            return
        queues = {item.task: [q.name for q in self.topology.route(item.task).queues] for item in open_items}
        wanted: dict[str, set[str]] = {}
        for item in open_items:
            for queue in queues[item.task]:  # the handler's queue and, with priority lanes, its backfill queue
                wanted.setdefault(queue, set()).add(task_id(item.task, item.key))
        sighting = broker_for(self.celery).locate(wanted)
        # A copy may have been handled while the broker was searched: ask the database again.
        still_open = self._unsettled(open_items)
        self._forget_settled([i for i in _without(open_items, still_open) if (i.task, i.key) in from_ledger], report)
        lost: list[Watch] = []
        to_watch: list[Watch] = []
        horizon = now - timedelta(hours=self.settings.sweep_horizon_hours)
        for item in still_open:
            if not any(sighting.present(queue, task_id(item.task, item.key)) for queue in queues[item.task]):
                lost.append(item)
            elif (item.task, item.key) not in from_ledger:
                to_watch.append(item)
            elif item.relayed_at < horizon:
                logger.warning(
                    "redelivery sweep: %s for %s is still on its way after %g h; no longer watched",
                    item.key, item.task, self.settings.sweep_horizon_hours,
                )
                self.ledger.forget([item])
        self.ledger.watch(to_watch)
        report.watched += len(to_watch)
        self._republish(lost, now, report)

    def _forget_settled(self, items: list[Watch], report: SweepReport) -> None:
        self.ledger.forget(items)
        report.settled += len(items)

    def _known(self, item: Watch) -> bool:
        try:
            self.topology.route(item.task)
            return True
        except KeyError:
            logger.warning("redelivery sweep: task %s no longer exists; %s is no longer watched", item.task, item.key)
            return False

    def _unsettled(self, items: list[Watch]) -> list[Watch]:
        """Items with neither an inbox marker nor a dead letter."""
        if not items:
            return []
        paths = {item.task: self.topology.route(item.task).spec.path for item in items}
        handled = self.inbox.handled((item.key, paths[item.task]) for item in items)
        parked = self.dead_letters.parked((item.task, item.key) for item in items)
        return [
            item for item in items
            if (item.key, paths[item.task]) not in handled and (item.task, item.key) not in parked
        ]

    def _republish(self, lost: Iterable[Watch], now: datetime, report: SweepReport) -> None:
        lost = list(lost)
        if not lost:
            return
        with self.celery.producer_or_acquire() as producer:
            for item in lost:
                if item.redeliveries >= self.settings.redelivery_attempts:
                    self._give_up(item, report)
                    continue
                self.relay.send(self.topology.route(item.task), item.payload, item.key, item.category, producer)
                self.ledger.redelivered(item, now)
                report.redelivered += 1
                logger.warning(
                    "redelivery sweep: %s for %s was never handled and no copy is left; republished (%d of %d)",
                    item.key, item.task, item.redeliveries + 1, self.settings.redelivery_attempts,
                )

    def _give_up(self, item: Watch, report: SweepReport) -> None:
        error = MessageLost(
            f"{item.key} was relayed to {item.task} at {item.relayed_at.isoformat()} and never handled; the "
            f"sweep republished it {item.redeliveries} time(s) and every copy vanished. Check the broker's "
            "persistence, then replay this dead letter.",
            task=item.task, message_key=item.key,
        )
        entry = self.dead_letters.park(item.task, item.payload, error, attempts=item.redeliveries)
        self.ledger.forget([item])
        report.dead_lettered += 1
        logger.error("redelivery sweep: %s dead-lettered as %s", error, entry)


def _without(items: list[Watch], removed: list[Watch]) -> list[Watch]:
    """``items`` but those in ``removed`` (by identity: payloads make equality slow)."""
    gone = {id(item) for item in removed}
    return [item for item in items if id(item) not in gone]
