"""One message at a time per (handler, correlation) for projectors and process managers.

Two prefork children may handle two events of one order at once. A process
manager catches that through its stream's expected version, but a projector's
read-modify-write of one projection row loses an update (Protean reads the row
outside the writing transaction, and projections carry no version): seen on
PostgreSQL and on SQLite in the 100-200-order saga runs. So both hold a lock
keyed by handler and correlation id while they handle a message:

* PostgreSQL: a session advisory lock on the relay's state database;
* SQLite (one machine by nature): an ``flock`` on one of 64 lock files next to
  the state database, chosen by the key's hash.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

__all__ = ["SerialLock"]

_BUCKETS = 64


class SerialLock:
    """Per-key locks shared by every process using ``engine``'s database."""

    def __init__(self, engine: Any) -> None:
        self.engine: Any = engine if engine is not None and engine.dialect.name == "postgresql" else None
        self.folder: Path | None = None
        database = getattr(getattr(engine, "url", None), "database", None)
        if engine is not None and engine.dialect.name == "sqlite" and database and database != ":memory:":
            self.folder = Path(database).resolve().parent / ".protean-celery-locks"

    @contextmanager
    def hold(self, key: str | None) -> Iterator[None]:
        """Hold the lock named ``key`` for the body (no lock when ``key`` is ``None``)."""
        if key is None:
            yield
            return
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        if self.engine is not None:
            with self._advisory(int.from_bytes(digest, "big", signed=True)):
                yield
        elif self.folder is not None:
            with self._flock(int.from_bytes(digest, "big") % _BUCKETS):
                yield
        else:
            yield

    @contextmanager
    def _advisory(self, number: int) -> Iterator[None]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": number})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": number})
                conn.commit()

    @contextmanager
    def _flock(self, bucket: int) -> Iterator[None]:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / f"{bucket}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
