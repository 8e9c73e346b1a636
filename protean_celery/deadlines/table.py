"""The deadlines table and what the CLI and tests read from it (I/O).

``protean_celery_deadlines`` lives in the **default provider's database**, beside
the inbox (``inbox.py``) and for the same reason: a deadline is written in the
Unit of Work of the handler that schedules it, so it exists exactly when that
handler's transition does. One row per pending deadline; firing deletes the row
in the transaction that appends its message, so a fired deadline leaves no row.

On Protean's memory provider (unit tests, Protean's own test mode) the table lives
in a private SQLite memory database of this process instead, outside any Unit of
Work: deadlines still schedule, list and fire (``drain``), but only this process
sees them, as it alone sees the memory provider's data.

A row whose message cannot be fired is retried with backoff and, after
``[custom.celery] deadline_attempts`` tries, kept with status ``failed`` and its
error until someone cancels it (``celery -A app protean deadlines cancel KEY``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    func,
    select,
)
from sqlalchemy.pool import StaticPool

from protean_celery.errors import DeadlineNotFound
from protean_celery.protean_api import provider_engine
from protean_celery.table_store import TableStore

__all__ = ["PENDING", "FAILED", "Deadline", "DeadlineStore", "deadlines_table", "utc"]

#: A deadline waiting for its time (or for a retry after a failed fire).
PENDING = "pending"
#: A deadline that failed ``deadline_attempts`` times: kept with its error, never fired again.
FAILED = "failed"

metadata = MetaData()

deadlines_table = Table(
    "protean_celery_deadlines",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("key", String(255), nullable=False, unique=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("message_type", String(255), nullable=False),
    Column("data", JSON, nullable=False),
    Column("aggregate_id", String(255), nullable=True),
    Column("correlation_id", String(255), nullable=True),
    Column("scheduled_by", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    # The beat tick's claim reads this index only: its cost does not grow with the rows pending.
    Index("ix_protean_celery_deadlines_due", "status", "due_at"),
)


@dataclass(frozen=True)
class Deadline:
    """One deadline, as stored.

    Attributes:
        key: the name it is cancelled by.
        due_at: when it fires (UTC).
        status: ``pending`` or ``failed``.
        kind: ``COMMAND`` or ``EVENT``.
        message_type: the Protean type name (``Orders.TimeOutPayment.v1``).
        data: the message's fields.
        aggregate_id: for an event, the aggregate it is raised on.
        correlation_id: the correlation chain of the handler that scheduled it.
        scheduled_by: the id of the message whose handler scheduled it.
        created_at: when it was scheduled.
        attempts: failed tries to fire it.
        last_error: the last failure, if any.
        id: the row id.
    """

    key: str
    due_at: datetime
    status: str
    kind: str
    message_type: str
    data: dict[str, Any]
    aggregate_id: str | None
    correlation_id: str | None
    scheduled_by: str | None
    created_at: datetime
    attempts: int
    last_error: str | None
    id: str

    @classmethod
    def from_row(cls, row: Any) -> Deadline:
        """A ``Deadline`` from a row of the table (a mapping)."""
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["due_at"], values["created_at"] = utc(row["due_at"]), utc(row["created_at"])
        return cls(**values)


class DeadlineStore(TableStore):
    """The deadlines table in a provider's database (the default provider's).

    Args:
        domain: the initialised domain.
        provider: the database provider the table lives in.
    """

    table = deadlines_table

    def __init__(self, domain: Any, provider: str = "default") -> None:
        self.domain = domain
        self.provider = provider
        engine = provider_engine(domain, provider)
        #: Whether the table shares the provider's database (and so its Units of Work).
        self.shared = engine is not None
        self.engine: Any = engine if engine is not None else _memory_engine(domain)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The active Unit of Work's session of this provider, else a transaction of its own."""
        from protean.utils.globals import current_uow

        uow = current_uow
        if self.shared and uow and uow.in_progress:
            yield uow.get_session(self.provider)
            return
        with self.engine.begin() as connection:
            yield connection

    def drop(self) -> None:
        """Drop the table (a private memory database keeps it: it is gone with the process)."""
        if self.shared:
            super().drop()

    def list(self, limit: int = 100, status: str | None = None) -> list[Deadline]:
        """Deadlines, soonest first (``status`` filters: ``pending`` or ``failed``)."""
        query = select(deadlines_table).order_by(deadlines_table.c.due_at).limit(limit)
        if status is not None:
            query = query.where(deadlines_table.c.status == status)
        with self.engine.connect() as conn:
            return [Deadline.from_row(row) for row in conn.execute(query).mappings()]

    def get(self, key: str) -> Deadline:
        """The deadline named ``key``.

        Raises:
            DeadlineNotFound: no deadline has this key.
        """
        row = self.first(deadlines_table.c.key == key)
        if row is None:
            raise _not_found(key)
        return Deadline.from_row(row)

    def cancel(self, key: str) -> Deadline:
        """Delete the deadline named ``key`` (pending or failed) and return it.

        Raises:
            DeadlineNotFound: no deadline has this key (it fired, was cancelled, or never existed).
        """
        found = self.get(key)
        with self.engine.begin() as conn:
            deleted = conn.execute(deadlines_table.delete().where(deadlines_table.c.id == found.id)).rowcount
        if not deleted:
            raise _not_found(key)  # it fired between the look-up and the delete
        return found

    def count(self, status: str = PENDING) -> int:
        """How many deadlines have ``status``."""
        query = select(func.count()).select_from(deadlines_table).where(deadlines_table.c.status == status)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def remove_key(self, connection: Any, key: str) -> bool:
        """Delete the deadline ``key`` on ``connection`` (a session or connection in a transaction)."""
        return bool(connection.execute(delete(deadlines_table).where(deadlines_table.c.key == key)).rowcount)


_memory_engines: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _memory_engine(domain: Any) -> Any:
    """This process's private SQLite memory database for ``domain``'s deadlines (table created)."""
    engine = _memory_engines.get(domain)
    if engine is None:
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
        metadata.create_all(engine, tables=[deadlines_table])
        _memory_engines[domain] = engine
    return engine


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value (SQLite keeps no offset) is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _not_found(key: str) -> DeadlineNotFound:
    return DeadlineNotFound(
        f"No deadline has the key {key!r}: it fired, was cancelled, or never existed. "
        "`celery -A <app> protean deadlines list` shows the pending ones.",
        key=key,
    )
