"""The redelivery ledger: messages the sweep is still watching (I/O).

A relayed message the sweep found unhandled, and not yet dead-lettered, gets
an entry here, keyed by handler task and message key, with the task payload.
The sweep checks each entry again on every run until the handler has handled
it or dead-lettered it; meanwhile the scan cursors can move past it. The table
lives in the relay's state database, next to the cursors and the dead letters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, delete, func, select, tuple_
from sqlalchemy.exc import IntegrityError

from protean_celery.table_store import TableStore

__all__ = ["Watch", "Ledger", "ledger_table"]

metadata = MetaData()

ledger_table = Table(
    "protean_celery_redeliveries",
    metadata,
    Column("task", String(255), primary_key=True),
    Column("message_key", String(512), primary_key=True),
    Column("category", String(255), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("relayed_at", DateTime(timezone=True), nullable=False),
    Column("redeliveries", Integer, nullable=False, default=0),
    Column("last_redelivered_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class Watch:
    """One message for one handler task, as the sweep sees it.

    Attributes:
        task: the handler task's name.
        key: the message key (``headers.id``, or ``stream@position`` for a command).
        category: the stream category (the routing key it is published with).
        payload: the task payload.
        relayed_at: when the relay published it.
        redeliveries: how often the sweep has republished it.
    """

    task: str
    key: str
    category: str
    payload: Any
    relayed_at: datetime
    redeliveries: int = 0


class Ledger(TableStore):
    """The watched messages, in the table ``protean_celery_redeliveries`` on ``engine``."""

    table = ledger_table

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def all(self, limit: int = 5000) -> list[Watch]:
        """The watched messages, oldest relayed first."""
        query = select(ledger_table).order_by(ledger_table.c.relayed_at).limit(limit)
        with self.engine.connect() as conn:
            return [
                Watch(
                    task=row.task, key=row.message_key, category=row.category, payload=row.payload,
                    relayed_at=_aware(row.relayed_at), redeliveries=int(row.redeliveries),
                )
                for row in conn.execute(query)
            ]

    def count(self) -> int:
        """How many messages are watched."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ledger_table)).scalar_one())

    def watch(self, watches: Iterable[Watch]) -> None:
        """Add entries; one already there keeps its count."""
        for item in watches:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        ledger_table.insert().values(
                            task=item.task, message_key=item.key, category=item.category, payload=item.payload,
                            relayed_at=item.relayed_at, redeliveries=item.redeliveries,
                        )
                    )
            except IntegrityError:
                pass  # already watched (another sweep, or an earlier scan of the same row)

    def redelivered(self, item: Watch, now: datetime) -> None:
        """Count one more republication of ``item`` (creating the entry when new)."""
        with self.engine.begin() as conn:
            updated = conn.execute(
                ledger_table.update()
                .where(ledger_table.c.task == item.task, ledger_table.c.message_key == item.key)
                .values(redeliveries=ledger_table.c.redeliveries + 1, last_redelivered_at=now)
            ).rowcount
        if not updated:
            self.watch([Watch(**{**item.__dict__, "redeliveries": item.redeliveries + 1})])

    def forget(self, items: Iterable[Watch]) -> None:
        """Remove entries (handled, dead-lettered, or past the horizon)."""
        pairs = [(item.task, item.key) for item in items]
        if not pairs:
            return
        with self.engine.begin() as conn:
            for start in range(0, len(pairs), 200):
                conn.execute(
                    delete(ledger_table).where(
                        tuple_(ledger_table.c.task, ledger_table.c.message_key).in_(pairs[start:start + 200])
                    )
                )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
