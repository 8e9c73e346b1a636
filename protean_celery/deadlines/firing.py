"""Fire due deadlines: the beat task ``<prefix>.<domain>.relay.deadlines`` (I/O).

Every ``[custom.celery] deadline_interval`` seconds (default 1) beat runs the task;
``drain()`` and ``celery -A app protean drain`` fire due deadlines on every pass.
A tick fires batches of ``deadline_batch_size`` until none is due (at most
``BATCHES_PER_TICK`` batches; the next tick goes on).

One batch is one Unit of Work on the default provider:

1. **claim**: ``DELETE … WHERE id IN (SELECT id … WHERE status = 'pending' AND
   due_at <= now ORDER BY due_at LIMIT n FOR UPDATE SKIP LOCKED) RETURNING *``:
   on PostgreSQL two ticks take disjoint rows; on SQLite the delete takes the
   database write lock, so a second tick waits and finds them gone. The index on
   ``(status, due_at)`` keeps this cost flat however many deadlines are pending;
2. **fire** each row: a command through ``domain.process(command,
   asynchronous=True)`` (appended to the event store, relayed to its handler like
   any asynchronous command, inbox included), an event raised on its aggregate and
   saved (event store and outbox, like any event that aggregate raises);
3. **commit**: the deletes and the appends (the SQL event store in the default
   database joins the Unit of Work), or nothing. (On the memory provider the rows
   are in a private database, :mod:`~protean_celery.deadlines.table`, and the
   claim commits just before the Unit of Work.) A worker killed in between leaves
   every row pending, and the next tick fires it: **exactly once**. With the event
   store in another database (Message DB) the append commits first, so a crash
   between the two can fire a deadline twice: at least once, and the handler's
   own idempotence decides.

A batch that fails is fired again one deadline at a time, so one bad deadline (a
type no longer registered, an aggregate that is gone) does not hold back the
others: it is retried with backoff and kept as ``failed`` after
``deadline_attempts`` tries. After the tick, what it appended is relayed at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from protean.core.unit_of_work import UnitOfWork
from sqlalchemy import delete, select, update

from protean_celery.deadlines.table import FAILED, PENDING, DeadlineStore, deadlines_table, utc
from protean_celery.errors import DeadlineError
from protean_celery.protean_api import resolve_type

if TYPE_CHECKING:
    from protean_celery.runtime import Runtime

__all__ = ["BATCHES_PER_TICK", "FireReport", "fire_due", "register_deadline_task"]

logger = logging.getLogger(__name__)

#: Batches one tick fires at most; the rest wait for the next tick.
BATCHES_PER_TICK = 10

_MAX_BACKOFF = 300.0


@dataclass
class FireReport:
    """What one tick did: deadlines fired, failed tries, batches run."""

    fired: int = 0
    failed: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts, as the beat task returns them."""
        return asdict(self)


def fire_due(runtime: Runtime, max_batches: int = BATCHES_PER_TICK) -> FireReport:
    """Fire every due deadline of ``runtime``'s domain (up to ``max_batches`` batches), then relay.

    Never raises for one deadline: its failure is recorded on its row.
    """
    report = FireReport()
    store = DeadlineStore(runtime.domain)
    size, attempts = runtime.settings.deadline_batch_size, runtime.settings.deadline_attempts
    with runtime.commits.deferred(), runtime.domain.domain_context():
        while report.batches < max_batches:
            report.batches += 1
            fired = _fire_batch(runtime.domain, store, size, attempts, report)
            if fired < size:
                break
    if report.fired:
        runtime.nudge()
    return report


def _fire_batch(domain: Any, store: DeadlineStore, size: int, attempts: int, report: FireReport) -> int:
    """Claim and fire up to ``size`` due deadlines in one Unit of Work; returns how many were due."""
    now = utc(domain.clock.now())
    if not _any_due(store, now):
        return 0  # an idle tick is one indexed read: no transaction, no write lock (SQLite)
    try:
        with UnitOfWork(), store.transaction() as connection:
            rows = _claim(connection, now, size)
            for row in rows:
                _fire(domain, row)
    except Exception as exc:
        logger.warning("firing a batch of deadlines failed, firing them one at a time: %r", exc)
        return _fire_singly(domain, store, now, size, attempts, report)
    report.fired += len(rows)
    return len(rows)


def _any_due(store: DeadlineStore, now: datetime) -> bool:
    table = deadlines_table
    query = select(table.c.id).where(table.c.status == PENDING, table.c.due_at <= now).limit(1)
    with store.engine.connect() as conn:
        return conn.execute(query).first() is not None


def _claim(session: Any, now: datetime, size: int, ids: Sequence[str] | None = None) -> list[Any]:
    """Delete and return due pending rows (or the rows ``ids``), soonest first."""
    rows = session.execute(_claim_statement(now, size, ids)).mappings().all()
    return sorted(rows, key=lambda row: (utc(row["due_at"]), row["id"]))


def _claim_statement(now: datetime, size: int, ids: Sequence[str] | None = None) -> Any:
    """``DELETE … WHERE id IN (due ids, soonest first, LIMIT size, SKIP LOCKED) RETURNING *``."""
    table = deadlines_table
    due = select(table.c.id).where(table.c.status == PENDING, table.c.due_at <= now)
    if ids is not None:
        due = due.where(table.c.id.in_(ids))
    due = due.order_by(table.c.due_at).limit(size).with_for_update(skip_locked=True)
    return delete(table).where(table.c.id.in_(due)).returning(*table.c)


def _fire_singly(domain: Any, store: DeadlineStore, now: datetime, size: int, attempts: int,
                 report: FireReport) -> int:
    table = deadlines_table
    query = select(table.c.id).where(table.c.status == PENDING, table.c.due_at <= now)
    with store.engine.connect() as conn:
        ids = list(conn.execute(query.order_by(table.c.due_at).limit(size)).scalars())
    for deadline_id in ids:
        try:
            with UnitOfWork(), store.transaction() as connection:
                for row in _claim(connection, now, 1, ids=[deadline_id]):
                    _fire(domain, row)
            report.fired += 1
        except Exception as exc:
            report.failed += 1
            _record_failure(store, deadline_id, exc, now, attempts)
    return len(ids)


def _fire(domain: Any, row: Any) -> None:
    """Turn one claimed row into its message, in the active Unit of Work."""
    cls = resolve_type(domain, row["message_type"])
    if cls is None:
        raise DeadlineError(
            f"Deadline {row['key']!r} sends {row['message_type']}, which this domain no longer registers: "
            "register it again (or an upcaster), or cancel the deadline."
        )
    message = cls(**row["data"])
    if row["kind"] == "COMMAND":
        domain.process(message, asynchronous=True, correlation_id=row["correlation_id"])
        return
    repository = domain.repository_for(cls.meta_.part_of)
    aggregate = repository.get(row["aggregate_id"])
    aggregate.raise_(message)
    repository.add(aggregate)


def _record_failure(store: DeadlineStore, deadline_id: str, error: Exception, now: datetime, attempts: int) -> None:
    """Count a failed try on the row: retry later with backoff, or keep it as failed."""
    table = deadlines_table
    with store.engine.begin() as conn:
        row = conn.execute(select(table.c.key, table.c.attempts).where(table.c.id == deadline_id)).first()
        if row is None:
            return  # cancelled meanwhile
        tried = int(row.attempts) + 1
        status = FAILED if tried >= attempts else PENDING
        retry_at = now + timedelta(seconds=min(2.0**tried, _MAX_BACKOFF))
        conn.execute(
            update(table).where(table.c.id == deadline_id)
            .values(attempts=tried, status=status, last_error=repr(error)[:2000], due_at=retry_at)
        )
    log = logger.error if status == FAILED else logger.warning
    log("deadline %r failed to fire (try %d of %d%s): %r", row.key, tried, attempts,
        ", kept as failed" if status == FAILED else "", error)


def register_deadline_task(celery: Any, runtime: Runtime, name: str) -> None:
    """Register the beat task ``name`` that fires due deadlines of ``runtime``."""

    def fire_deadlines() -> dict[str, int]:
        return fire_due(runtime).as_dict()

    fire_deadlines.__doc__ = "Fire due deadlines (protean_celery.deadlines.firing)."
    celery.task(name=name, ignore_result=True, acks_late=False, shared=False)(fire_deadlines)
