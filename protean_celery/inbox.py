"""The inbox: each message is handled once per handler, even when delivered twice.

Celery delivers at least once (a redelivery after a killed worker, a relay that
re-publishes after a crash). Every handler task runs inside one Unit of Work
that also records ``(message key, handler)`` in ``protean_celery_inbox``, in the
database of the handler's aggregates (the ``default`` provider): the handler's
effects and its marker commit together, or not at all. A message whose marker
exists is acknowledged without running the handler. Two copies running at once
both handle it, but only one commits: the other's commit hits the marker's
primary key and is rolled back, effects included.

Protean's own Unit of Work inside the handler joins this outer one. With the
SQL event store in the same database, the handler's events, the commands it
issues and a process manager's transition join it too (``event_store/store.py``);
with the event store elsewhere they commit on their own, before the rest.

Markers are pruned by the maintenance task (``prune``) once they are older than
``inbox_retention_hours``: past that age no redelivery can arrive any more.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from protean.core.unit_of_work import UnitOfWork
from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, bindparam, insert, select, text

from protean_celery.protean_api import provider_engine
from protean_celery.sql import existing_pairs

__all__ = ["AlreadyHandled", "Inbox", "inbox_table"]

logger = logging.getLogger(__name__)

metadata = MetaData()

inbox_table = Table(
    "protean_celery_inbox",
    metadata,
    Column("message_key", String(512), primary_key=True),
    Column("handler", String(255), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)


class _Duplicate(Exception):
    """Raised inside the Unit of Work to roll it back when the marker exists."""


#: Raised by a step of the handler's Unit of Work that finds the message already handled (ordered lanes).
AlreadyHandled = _Duplicate


class Inbox:
    """Markers of handled messages in the default provider's database.

    Args:
        domain: the initialised domain.
        provider: the database provider the markers live in.
    """

    def __init__(self, domain: Any, provider: str = "default") -> None:
        self.domain = domain
        self.provider = provider
        self.engine: Any = provider_engine(domain, provider)

    @property
    def enabled(self) -> bool:
        """Markers need a SQL provider; the memory provider (unit tests) runs without."""
        return self.engine is not None

    def setup(self) -> None:
        """Create the marker table (idempotent)."""
        if self.enabled:
            metadata.create_all(self.engine, tables=[inbox_table])

    def drop(self) -> None:
        """Drop the marker table."""
        if self.enabled:
            metadata.drop_all(self.engine, tables=[inbox_table])

    def truncate(self) -> None:
        """Forget every marker."""
        if self.enabled:
            with self.engine.begin() as conn:
                conn.execute(inbox_table.delete())

    def prune(self, older_than: datetime) -> int:
        """Delete markers recorded before ``older_than``; returns how many.

        A copy of a message delivered after its marker was pruned is handled
        again, so ``older_than`` must lie beyond every redelivery window.
        """
        if not self.enabled:
            return 0
        with self.engine.begin() as conn:
            result = conn.execute(inbox_table.delete().where(inbox_table.c.processed_at < older_than))
            return int(result.rowcount or 0)

    def run_once(self, key: str, handler: str, handle: Callable[[], Any], lock: str | None = None) -> bool:
        """Run ``handle()`` and record ``(key, handler)`` in one Unit of Work.

        The marker is written first, in the Unit of Work's first statement (an
        insert that does nothing when the marker exists): a copy that is already
        handled costs one round trip, and a copy running at once waits for the
        first one's commit instead of handling the message twice.

        Args:
            lock: a key that serialises handlers across processes for the whole
                Unit of Work (projectors and process managers: one projection row,
                one saga instance): on PostgreSQL a transaction-scoped advisory
                lock taken in the same statement; on SQLite the marker's insert
                already takes the database write lock up front.

        Returns:
            ``False`` when the message was already handled (nothing ran, or what
            ran was rolled back); ``True`` otherwise.
        """
        if not self.enabled:
            handle()
            return True
        try:
            with UnitOfWork() as uow:
                session: Any = uow.get_session(self.provider)
                if not claim_marker(session, key, handler, lock):
                    raise _Duplicate
                handle()
        except _Duplicate:
            return False
        except Exception as exc:
            if _is_marker_conflict(exc):
                return False  # a concurrent copy committed first; ours rolled back
            raise
        return True

    def mark(self, key: str, handler: str) -> None:
        """Record ``(key, handler)`` as handled without running anything (idempotent).

        For a message that ends without the handler's Unit of Work: an expired
        command, a transition a process manager already made.
        """
        if not self.enabled:
            return
        try:
            with self.engine.begin() as conn:
                if conn.execute(
                    select(inbox_table.c.handler).where(
                        inbox_table.c.message_key == key, inbox_table.c.handler == handler
                    )
                ).first() is None:
                    conn.execute(
                        insert(inbox_table).values(message_key=key, handler=handler, processed_at=datetime.now(UTC))
                    )
        except Exception as exc:
            if not _is_marker_conflict(exc):
                raise

    def handled(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which ``(message key, handler)`` pairs have a marker."""
        if not self.enabled:
            return set()
        return existing_pairs(self.engine, inbox_table.c.message_key, inbox_table.c.handler, pairs)



def claim_marker(session: Any, key: str, handler: str, lock: str | None = None) -> bool:
    """Insert the marker ``(key, handler)`` in ``session``'s transaction; ``False`` when it exists.

    One statement on PostgreSQL and SQLite (``INSERT … ON CONFLICT DO NOTHING
    RETURNING``, with the advisory lock for ``lock`` taken first on PostgreSQL);
    a look-up and an insert elsewhere.
    """
    dialect = session.get_bind().dialect.name
    values = {"message_key": key, "handler": handler, "processed_at": datetime.now(UTC)}
    if dialect in ("postgresql", "sqlite"):  # one prepared text statement: nothing to build per message
        if lock is not None and dialect == "postgresql":
            return session.execute(_CLAIM_LOCKED, {**values, "lock": lock_number(lock)}).first() is not None
        return session.execute(_CLAIM, values).first() is not None
    seen = select(inbox_table.c.handler).where(inbox_table.c.message_key == key, inbox_table.c.handler == handler)
    if session.execute(seen).first() is not None:
        return False
    session.execute(insert(inbox_table).values(values))
    return True


_CLAIM = text(
    "INSERT INTO protean_celery_inbox (message_key, handler, processed_at) "
    "VALUES (:message_key, :handler, :processed_at) ON CONFLICT DO NOTHING RETURNING handler"
).bindparams(bindparam("processed_at", type_=DateTime(timezone=True)))
#: The advisory lock is taken first, in the same statement (PostgreSQL).
_CLAIM_LOCKED = text(
    "INSERT INTO protean_celery_inbox (message_key, handler, processed_at) "
    "SELECT :message_key, :handler, :processed_at FROM (SELECT pg_advisory_xact_lock(:lock)) AS locked "
    "ON CONFLICT DO NOTHING RETURNING handler"
).bindparams(bindparam("processed_at", type_=DateTime(timezone=True)), bindparam("lock", type_=BigInteger))


def lock_number(key: str) -> int:
    """A stable signed 64-bit advisory-lock number for ``key`` (Python's ``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _is_marker_conflict(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).lower()
        if "protean_celery_inbox" in text and ("unique" in text or "duplicate key" in text):
            return True
        current = current.__cause__ or current.__context__
    return False
