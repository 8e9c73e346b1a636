"""Whose turn it is in each ordered lane: the last stream position a handler handled, per stream (I/O).

``protean_celery_turns`` holds one row per lane (``<handler path>|<stream>``): the
position in that stream of the last message the handler is done with. It lives
in the inbox's database and is moved in the handler's own Unit of Work, right
after the inbox marker, so the handler's effects, its marker and its turn commit
together or not at all (:mod:`protean_celery.ordering` decides what to move).

Moving a lane from ``n - 1`` to ``n`` is one statement (:func:`take`, an upsert).
On PostgreSQL it locks the lane's row even when it is not this message's turn, so
a message whose predecessor is being handled right now waits for that commit and
then goes on, instead of being deferred. Rows are pruned by maintenance once
they have not moved for ``inbox_retention_hours``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, case, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from protean_celery.inbox import inbox_table
from protean_celery.protean_api import provider_engine
from protean_celery.table_store import TableStore

__all__ = ["Turns", "turns_table"]

metadata = MetaData()

turns_table = Table(
    "protean_celery_turns",
    metadata,
    Column("lane", String(1024), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class Turns(TableStore):
    """The lanes' positions in the inbox's database.

    Args:
        domain: the initialised domain.
        provider: the database provider the inbox lives in.
    """

    table = turns_table

    def __init__(self, domain: Any, provider: str = "default") -> None:
        self.engine: Any = provider_engine(domain, provider)

    def prune(self, older_than: datetime) -> int:
        """Delete lanes that have not moved since ``older_than``; returns how many.

        A lane pruned and then seen again starts over from the stream's first
        position; predecessors older than the inbox retention count as handled.
        """
        if self.engine is None:
            return 0
        with self.engine.begin() as conn:
            return int(conn.execute(turns_table.delete().where(turns_table.c.updated_at < older_than)).rowcount or 0)

    def position(self, lane: str) -> int | None:
        """The last position handled in ``lane`` (``None``: no row), read outside any Unit of Work."""
        if self.engine is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(turns_table.c.position).where(turns_table.c.lane == lane)).first()
        return None if row is None else int(row[0])


def take(session: Any, lane: str, position: int) -> int | None:
    """Move ``lane`` to ``position`` if its last handled position is ``position - 1``.

    Runs in ``session``'s transaction (the handler's Unit of Work). On PostgreSQL
    and SQLite one statement, an upsert: position 0 inserts the lane's row; a later
    position finding no row inserts a placeholder (``-1``: nothing handled) that
    lives only as long as this transaction, unless :func:`settle` moves it. The
    row is locked whatever the outcome, so a predecessor in flight, even the one
    inserting the row, is waited for.

    Returns:
        ``position`` when this message took its turn; otherwise the lane's last
        handled position (``-1``: none yet), or ``None`` when the lane is at
        ``position`` already.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return _take_elsewhere(session, lane, position)
    now = datetime.now(UTC)
    module: Any = postgresql if dialect == "postgresql" else sqlite
    ours = turns_table.c.position == position - 1
    statement = module.insert(turns_table).values(lane=lane, position=0 if position == 0 else -1, updated_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[turns_table.c.lane],
        set_={"position": case((ours, position), else_=turns_table.c.position),
              "updated_at": case((ours, now), else_=turns_table.c.updated_at)},
        where=turns_table.c.position != position,
    ).returning(turns_table.c.position)
    moved = session.execute(statement).first()
    return None if moved is None else int(moved[0])


def settle(session: Any, lane: str, last: int, position: int) -> bool:
    """Move ``lane`` from ``last`` (``-1``: the placeholder :func:`take` left) to ``position``.

    Returns:
        ``False`` when the lane is no longer at ``last``.
    """
    statement = update(turns_table).where(turns_table.c.lane == lane, turns_table.c.position == last)
    return int(session.execute(statement.values(position=position, updated_at=datetime.now(UTC))).rowcount or 0) == 1


def _take_elsewhere(session: Any, lane: str, position: int) -> int | None:
    """:func:`take` on another database: a locking read, then an insert or an update."""
    row = session.execute(select(turns_table.c.position).where(turns_table.c.lane == lane).with_for_update()).first()
    if row is None:
        session.execute(insert(turns_table).values(lane=lane, position=0 if position == 0 else -1,
                                                   updated_at=datetime.now(UTC)))
        return 0 if position == 0 else -1
    current = int(row[0])
    if current == position:
        return None
    return position if current == position - 1 and settle(session, lane, current, position) else current


def marked(session: Any, handler: str, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` have an inbox marker for ``handler``, as ``session`` sees them."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return set()
    query = select(inbox_table.c.message_key).where(
        inbox_table.c.handler == handler, inbox_table.c.message_key.in_(wanted)
    )
    return {str(row[0]) for row in session.execute(query)}

