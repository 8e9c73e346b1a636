"""The event store's table. Pure: declarations only.

``category`` is stored (the text before the first ``-`` of the stream name,
exactly as Protean's ``BaseEventStore.category``), so a category read is an
index range scan and ``position-…`` or ``failed-…`` streams never leak into it.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["metadata", "events", "category_of"]

metadata = MetaData()

_JSON = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
_ID = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "protean_events",
    metadata,
    Column("global_position", _ID, primary_key=True, autoincrement=True),
    Column("stream_name", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("id", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("data", _JSON, nullable=False),
    Column("metadata", _JSON, nullable=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Index("ux_protean_events_stream_position", "stream_name", "position", unique=True),
    Index("ix_protean_events_category_global", "category", "global_position"),
    Index("ix_protean_events_id", "id"),
)


def category_of(stream_name: str) -> str:
    """The category of ``stream_name``: the text before its first ``-``."""
    return stream_name.partition("-")[0]
