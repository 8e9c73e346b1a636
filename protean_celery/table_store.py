"""One of protean-celery's own tables on an engine: create it, drop it, empty it, read a row (I/O).

The dead letters, the redelivery ledger, the ordered lanes' turns and the durable
deadlines each keep one table; :class:`TableStore` is what they share. A store
without a database (``engine`` is ``None``: Protean's memory provider) does
nothing here, as the inbox does there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import Table, select

from protean_celery.cut_reads import fetch

__all__ = ["TableStore"]


class TableStore:
    """The life cycle of one table on ``engine``; a subclass names the ``table`` and sets ``engine``."""

    #: The table this store keeps.
    table: ClassVar[Table]
    #: A SQLAlchemy engine, or ``None`` when there is no database to keep it in.
    engine: Any

    def setup(self) -> None:
        """Create the table and its indexes (idempotent)."""
        if self.engine is not None:
            self.table.metadata.create_all(self.engine, tables=[self.table])

    def drop(self) -> None:
        """Drop the table."""
        if self.engine is not None:
            self.table.metadata.drop_all(self.engine, tables=[self.table])

    def truncate(self) -> None:
        """Delete every row."""
        if self.engine is not None:
            with self.engine.begin() as conn:
                conn.execute(self.table.delete())

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """A transaction that takes the database's write lock up front (``BEGIN IMMEDIATE`` on SQLite).

        A transaction that reads, then writes, would otherwise fail at once with
        "database is locked" on SQLite when another writer committed in between
        (:mod:`protean_celery.sql`); other databases begin as usual.
        """
        with self.engine.connect().execution_options(immediate=True) as conn, conn.begin():
            yield conn

    def first(self, *where: Any) -> Mapping[str, Any] | None:
        """The first row matching ``where`` (SQLAlchemy conditions on ``table``), as a mapping; ``None``: none."""
        query = select(self.table).where(*where)
        row = fetch(self.engine, lambda conn: conn.execute(query).mappings().first())  # a cut read runs again
        return None if row is None else dict(row)
