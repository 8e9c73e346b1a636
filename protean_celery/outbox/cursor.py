"""Durable, locked cursors for the command relay (I/O).

Protean 0.18 never puts commands in the outbox: ``domain.process()`` appends
them to the event store. The command relay reads each command category past a
cursor kept here. A relay holds the cursor's row lock from reading to
publishing to moving the cursor, so two relays (a double-fired beat, a nudge
racing a tick) never publish the same commands; the second waits, then reads
past the first. A crash after publishing and before the commit re-publishes
that batch once: the documented at-least-once window.

PostgreSQL locks the row (``SELECT … FOR UPDATE``); SQLite takes the database
write lock (``BEGIN IMMEDIATE``), which is why the embedded profile keeps
these cursors in a small database of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import BigInteger, Column, MetaData, String, Table, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from protean_celery.cut_reads import fetch

__all__ = ["CursorStore", "SQLCursorStore", "MemoryCursorStore", "cursors_table"]

metadata = MetaData()

cursors_table = Table(
    "protean_celery_relay_cursors",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("position", BigInteger, nullable=False),
)


class CursorStore(Protocol):
    """Where relay cursors live."""

    def advance(self, name: str, step: Callable[[int], int]) -> int:
        """Lock cursor ``name``, call ``step(position)``, store what it returns."""

    def position(self, name: str) -> int:
        """The current position of cursor ``name`` (-1 when it was never moved)."""


class SQLCursorStore:
    """Cursors in a SQL table (SQLite or PostgreSQL) on ``engine``, the state database's (see ``state.py``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ready = False
        self._rows: set[str] = set()

    def setup(self) -> None:
        """Create the cursor table (idempotent)."""
        metadata.create_all(self.engine, tables=[cursors_table])
        self._ready = True

    def drop(self) -> None:
        """Drop the cursor table."""
        metadata.drop_all(self.engine, tables=[cursors_table])
        self._ready = False

    def truncate(self) -> None:
        """Forget every cursor."""
        with self.engine.begin() as conn:
            conn.execute(cursors_table.delete())
        self._rows.clear()

    def position(self, name: str) -> int:
        if not self._ready:
            self.setup()
        query = select(cursors_table.c.position).where(cursors_table.c.name == name)
        # A read only: on PostgreSQL without BEGIN and ROLLBACK round trips; repeated once if cut.
        value = fetch(self.engine, lambda conn: conn.execute(query).scalar(),
                      autocommit=self.engine.dialect.name == "postgresql")
        return -1 if value is None else int(value)

    def advance(self, name: str, step: Callable[[int], int]) -> int:
        if not self._ready:
            self.setup()
        self._ensure_row(name)
        with self.engine.connect().execution_options(immediate=True) as conn, conn.begin():
            current = self._locked_position(conn, name)
            new = step(current)
            if new != current:
                conn.execute(
                    cursors_table.update().where(cursors_table.c.name == name).values(position=new)
                )
        return new

    def _ensure_row(self, name: str) -> None:
        if name in self._rows:
            return
        # Write-locked from the start (BEGIN IMMEDIATE on SQLite): a read that turns into a write
        # fails at once with "database is locked" when another process wrote in between.
        with self.engine.connect().execution_options(immediate=True) as conn:
            exists = conn.execute(select(cursors_table.c.name).where(cursors_table.c.name == name)).first()
            if not exists:
                try:
                    conn.execute(cursors_table.insert().values(name=name, position=-1))
                    conn.commit()
                except IntegrityError:
                    conn.rollback()  # another relay created it first
        self._rows.add(name)

    def _locked_position(self, conn: Connection, name: str) -> int:
        query = select(cursors_table.c.position).where(cursors_table.c.name == name)
        if conn.dialect.name != "sqlite":  # SQLite already holds the write lock
            query = query.with_for_update()
        return int(conn.execute(query).scalar_one())


class MemoryCursorStore:
    """Cursors in process memory: for the in-process test drain only."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}
        self._lock = threading.Lock()

    def position(self, name: str) -> int:
        return self._positions.get(name, -1)

    def advance(self, name: str, step: Callable[[int], int]) -> int:
        with self._lock:
            new = step(self._positions.get(name, -1))
            self._positions[name] = new
            return new

