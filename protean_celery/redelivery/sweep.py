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
* one that is still somewhere (see :mod:`probe`) is *watched* (the ledger) and
  checked again on every run;
* one that is nowhere is republished, to that handler only, with its usual
  task id; after ``redelivery_attempts`` republications it is dead-lettered
  with :class:`MessageLost`, never dropped.

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
from typing import Any

from protean.utils.eventing import Message
from protean.utils.outbox import OutboxStatus
from protean.utils.query import Q

from protean_celery.deadletter import DeadLetters
from protean_celery.envelope import encode, message_key, metadata_of, task_id
from protean_celery.errors import MessageLost, PayloadTooLarge
from protean_celery.inbox import Inbox
from protean_celery.intake import check_size
from protean_celery.outbox.admin import providers as outbox_providers
from protean_celery.outbox.cursor import CursorStore
from protean_celery.outbox.relay import Relay, command_cursor_name
from protean_celery.redelivery.ledger import Ledger, Watch
from protean_celery.redelivery.probe import locate
from protean_celery.settings import CelerySettings
from protean_celery.topology import Topology

__all__ = ["Sweep", "SweepReport"]

logger = logging.getLogger(__name__)

#: Rows (or commands) one scan reads, and scans per source and run at most.
SCAN_BATCH = 1000
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
    """

    checked: int = 0
    watched: int = 0
    settled: int = 0
    redelivered: int = 0
    dead_lettered: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts, for the task result and the log line."""
        return dict(self.__dict__)


class Sweep:
    """Finds relayed messages no handler got, and publishes them again.

    Args:
        celery: the Celery app (publishing, broker searches, worker queries).
        domain: the initialised Protean domain.
        topology: the domain's topology.
        settings: protean-celery settings (``redeliver_after``, horizon, attempts).
        cursors: where the scan positions are kept (next to the relay's cursors).
        inbox: the handlers' markers.
        dead_letters: the dead-letter store.
        relay: publishes the copies.
        ledger: the watched messages.
    """

    def __init__(
        self,
        celery: Any,
        domain: Any,
        topology: Topology,
        settings: CelerySettings,
        cursors: CursorStore,
        inbox: Inbox,
        dead_letters: DeadLetters,
        relay: Relay,
        ledger: Ledger,
    ) -> None:
        self.celery = celery
        self.domain = domain
        self.topology = topology
        self.settings = settings
        self.cursors = cursors
        self.inbox = inbox
        self.dead_letters = dead_letters
        self.relay = relay
        self.ledger = ledger

    @property
    def enabled(self) -> bool:
        """The sweep needs inbox markers (a SQL default database) and a positive ``sweep_interval``."""
        return self.inbox.enabled and self.settings.sweep_interval > 0

    def run(self, now: datetime | None = None) -> SweepReport:
        """Check the watched messages, then what was relayed since the last run."""
        report = SweepReport()
        if not self.enabled:
            return report
        now = now or datetime.now(UTC)
        with self.domain.domain_context():
            self._settle(self.ledger.all(), now, report, watched=True)
            for provider in outbox_providers(self.domain):
                self._scan(f"sweep:outbox:{provider}", partial(self._scan_outbox, provider, now, report))
            for category in self.topology.command_categories():
                self._scan(f"sweep:commands:{category}", partial(self._scan_commands, category, now, report))
        if report.redelivered or report.dead_lettered:
            logger.warning("redelivery sweep: %s", report.as_dict())
        return report

    # -- reading what was relayed ------------------------------------------------

    def _scan(self, cursor: str, scan: Callable[[int], tuple[int, bool]]) -> None:
        """Scan past ``cursor`` batch by batch (``SCAN_BATCHES`` at most), settling each, moving the cursor.

        The cursor moves only after the ledger and the copies were written (a
        crash in between scans the same rows again), and outside the scan: on
        SQLite, holding the cursor's lock would lock the ledger's database too.
        Two sweeps at once may both republish a lost message; the inbox absorbs that.
        """
        position = self.cursors.position(cursor)
        for _batch in range(SCAN_BATCHES):
            moved, full = scan(position)
            if moved != position:
                self.cursors.advance(cursor, partial(max, moved))
            if not full or moved == position:
                return
            position = moved

    def _scan_outbox(self, provider: str, now: datetime, report: SweepReport, mark: int) -> tuple[int, bool]:
        """Outbox rows published after ``mark`` (epoch microseconds) and before the cutoff.

        Returns:
            The new mark, and whether the batch was full.
        """
        cutoff = now - timedelta(seconds=self.settings.redeliver_after)
        start = max(_from_micros(mark), now - timedelta(hours=self.settings.sweep_horizon_hours))
        criteria = Q(status=OutboxStatus.PUBLISHED.value) & Q(published_at__gt=start) & Q(published_at__lte=cutoff)
        dao = self.domain._get_outbox_repo(provider)._dao
        rows = dao.query.filter(criteria).order_by("published_at").limit(SCAN_BATCH).all().items
        if not rows:
            return mark, False
        items: list[Watch] = []
        for row in rows:
            message = Message(data=row.data, metadata=row.metadata_)
            items.extend(self._watches(message, str(row.metadata_.domain.stream_category), _aware(row.published_at)))
        self._settle(items, now, report, watched=False)
        last = _micros(_aware(rows[-1].published_at))
        if len(rows) == SCAN_BATCH and last > _micros(_aware(rows[0].published_at)):
            # The batch may have cut a group of rows one relay run marked with one
            # timestamp: read that timestamp again next time (settled rows stay settled).
            last -= 1
        return max(last, mark), len(rows) == SCAN_BATCH

    def _scan_commands(self, category: str, now: datetime, report: SweepReport, position: int) -> tuple[int, bool]:
        """Commands past ``position``, up to the command relay's cursor and the cutoff.

        Returns:
            The new position, and whether a full batch was read past.
        """
        cutoff = now - timedelta(seconds=self.settings.redeliver_after)
        floor = now - timedelta(hours=self.settings.sweep_horizon_hours)
        relayed_to = self.cursors.position(command_cursor_name(category))
        store = self.domain.event_store.store
        rows = store._read(category, position=position + 1, no_of_messages=SCAN_BATCH)
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
                if written >= floor and asynchronous and self._fits(message):
                    items.extend(self._watches(message, category, written))
            position = int(row["global_position"])
            read += 1
        self._settle(items, now, report, watched=False)
        return position, read == SCAN_BATCH

    def _fits(self, message: Message) -> bool:
        """Whether the command relay published it (one above ``max_payload_bytes`` it dead-lettered)."""
        try:
            check_size(encode(message), self.settings.max_payload_bytes, "sweep")
            return True
        except PayloadTooLarge:
            return False

    def _watches(self, message: Message, category: str, relayed_at: datetime) -> list[Watch]:
        routes = self.topology.targets(category, str(metadata_of(message).headers.type))
        if not routes:
            return []
        key, payload = message_key(message), encode(message)
        return [Watch(route.task_name, key, category, payload, relayed_at) for route in routes]

    # -- settling ------------------------------------------------------------------

    def _settle(self, items: list[Watch], now: datetime, report: SweepReport, *, watched: bool) -> None:
        """Settle, watch or republish each item (``watched``: they come from the ledger)."""
        if not watched:
            report.checked += len(items)
        known = [item for item in items if self._known(item)]
        if watched and len(known) < len(items):
            self.ledger.forget(_without(items, known))
        open_items = self._unsettled(known)
        if watched:
            settled = _without(known, open_items)
            self.ledger.forget(settled)
            report.settled += len(settled)
        if not open_items:
            return
        queues = {item.task: self.topology.route(item.task).queue.name for item in open_items}
        wanted: dict[str, set[str]] = {}
        for item in open_items:
            wanted.setdefault(queues[item.task], set()).add(task_id(item.task, item.key))
        sighting = locate(self.celery, wanted)
        # A copy may have been handled while the broker was searched: ask the database again.
        still_open = self._unsettled(open_items)
        if watched:
            self.ledger.forget(_without(open_items, still_open))
            report.settled += len(open_items) - len(still_open)
        lost: list[Watch] = []
        fresh: list[Watch] = []
        horizon = now - timedelta(hours=self.settings.sweep_horizon_hours)
        for item in still_open:
            if sighting.present(queues[item.task], task_id(item.task, item.key)):
                if not watched:
                    fresh.append(item)
                elif item.relayed_at < horizon:
                    logger.warning(
                        "redelivery sweep: %s for %s is still on its way after %g h; no longer watched",
                        item.key, item.task, self.settings.sweep_horizon_hours,
                    )
                    self.ledger.forget([item])
            else:
                lost.append(item)
        self.ledger.watch(fresh)
        report.watched += len(fresh)
        self._republish(lost, now, report)

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


def _command(row: dict[str, Any]) -> Message | None:
    if row.get("type") == "SNAPSHOT":
        return None
    try:
        return Message.deserialize(row)
    except Exception:  # the command relay dead-letters what it cannot decode
        return None


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _from_micros(mark: int) -> datetime:
    return _EPOCH + timedelta(microseconds=max(mark, 0))
