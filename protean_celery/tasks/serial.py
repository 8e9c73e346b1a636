"""One message at a time per (handler, correlation) for projectors and process managers.

Two prefork children may handle two events of one order at once. A process
manager catches that through its stream's expected version, but a projector's
read-modify-write of one projection row would lose an update on PostgreSQL
(READ COMMITTED; projections carry no version). So both hold a PostgreSQL
advisory lock keyed by handler and correlation id while they handle a message.
SQLite needs none: it serialises writers, and a write on a stale snapshot fails
and is retried.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

__all__ = ["SerialLock"]


class SerialLock:
    """Advisory locks on ``engine`` (a no-op unless it is PostgreSQL)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine if engine is not None and engine.dialect.name == "postgresql" else None

    @contextmanager
    def hold(self, key: str | None) -> Iterator[None]:
        """Hold the lock named ``key`` for the body (no lock when ``key`` is ``None``)."""
        if self.engine is None or key is None:
            yield
            return
        number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": number})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": number})
                conn.commit()
