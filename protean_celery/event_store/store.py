"""``SQLEventStore``: Protean's ``BaseEventStore`` on SQLAlchemy (SQLite, PostgreSQL).

Select it with ``[event_store] provider = "sqlalchemy"`` and a ``database_uri``.

Guarantees, across processes:

* **Expected versions hold.** A write reads the stream's version and inserts
  the next position in one transaction; the unique ``(stream_name, position)``
  index turns any race into Protean's ``ExpectedVersionError``.
* **Per-stream positions are gap-free** from 0; global positions only grow.
* **Within a category, commit order = global-position order**, so a reader
  that pages a category by global position (the command relay) never skips a
  row that commits late: PostgreSQL writers take a transaction-scoped advisory
  lock per category (inside one server-side function call, ``postgres.py``);
  SQLite writers take the database write lock.
* **Atomic with the Unit of Work on a shared database.** When the store and
  a database provider of the domain point at the same database, an append made
  inside a Unit of Work runs on that Unit of Work's connection (Protean appends
  while its Unit of Work is active for this purpose, ADR-0015): the events, the
  aggregate rows, the outbox rows and the inbox marker commit together or not
  at all. On separate databases an append commits on its own, and a crash
  between the append and the commit leaves events whose state was never saved.
* A read cut mid-statement (PostgreSQL restarted during it) runs once more on a
  fresh connection (:mod:`protean_celery.cut_reads`); a write is never repeated.
* Category reads use the stored category; ``$all`` reads everything; both page
  by inclusive global position, a stream by inclusive position (ADR-0024).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from protean.exceptions import ExpectedVersionError
from protean.port.event_store import BaseEventStore
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from protean_celery.cut_reads import fetch
from protean_celery.errors import EventStoreError, EventStoreNotSetUp
from protean_celery.event_store import postgres
from protean_celery.event_store.schema import category_of, events, metadata
from protean_celery.protean_api import provider_engines
from protean_celery.sql import make_engine, safe_url

__all__ = ["SQLEventStore", "ALL", "same_database", "shared_provider"]

#: Protean's name for "every stream".
ALL = "$all"

_WRITE_ATTEMPTS = 5

T = TypeVar("T")


class SQLEventStore(BaseEventStore):
    """A Protean event store on a SQL database (see the module docstring).

    Args:
        domain: the Protean domain.
        conn_info: the ``[event_store]`` table: ``database_uri`` (required) and
            optional ``pool_size`` / ``max_overflow``.
    """

    def __init__(self, domain: Any, conn_info: dict[str, Any]) -> None:
        super().__init__("SQLAlchemy", domain, conn_info)
        uri = conn_info.get("database_uri")
        if not uri:
            raise EventStoreError(
                '[event_store] provider = "sqlalchemy" needs a database_uri, '
                'e.g. "sqlite:///.state/events.db" or "postgresql://user@host/db".'
            )
        pool = {k: int(conn_info[k]) for k in ("pool_size", "max_overflow") if k in conn_info}
        self.engine: Engine = make_engine(str(uri), "[event_store] database_uri", **pool)
        self._postgres = self.engine.dialect.name == "postgresql"
        # The provider sharing this database, looked up on first append (providers may init after the store).
        self._shared: str | None = None
        self._shared_known = False

    # -- administration ---------------------------------------------------------

    def setup(self) -> None:
        """Create the database (when missing) and the table and indexes (idempotent)."""
        from protean_celery.databases import prepare_databases

        uri = self.engine.url.render_as_string(hide_password=False)  # str() would mask the password
        prepare_databases({"event_store": {"provider": "sqlalchemy", "database_uri": uri}})
        with self._errors():
            metadata.create_all(self.engine)
            if self._postgres:
                postgres.install_write_function(self.engine)

    def drop(self) -> None:
        """Drop the table."""
        with self._errors():
            metadata.drop_all(self.engine)

    def truncate(self) -> None:
        """Delete every message."""
        self._data_reset()

    def dispose(self, close: bool = True) -> None:
        """Drop pooled connections; ``close=False`` in a forked child keeps the parent's sockets."""
        self.engine.dispose(close=close)

    def close(self) -> None:
        self.engine.dispose()

    # -- BaseEventStore ---------------------------------------------------------

    def _write(
        self,
        stream_name: str,
        message_type: str,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> int:
        _check_stream(stream_name)
        joined = self._unit_of_work_connection()
        if self._postgres:
            return self._write_postgres(stream_name, message_type, data, metadata, expected_version, joined)
        if joined is not None:
            try:
                with self._errors():
                    position = self._insert(joined, stream_name, message_type, data, metadata, expected_version)
            except IntegrityError:
                version = self._version(stream_name)
                expected = expected_version if expected_version is not None else version - 1
                raise ExpectedVersionError(_version_message(expected, stream_name, version)) from None
            return position
        for _ in range(_WRITE_ATTEMPTS):
            try:
                with self._errors(), self.engine.connect().execution_options(immediate=True) as conn:
                    with conn.begin():
                        position = self._insert(conn, stream_name, message_type, data, metadata, expected_version)
                return position
            except IntegrityError:
                # Another writer took the position first (only possible without a lock).
                if expected_version is not None:
                    version = self._version(stream_name)
                    raise ExpectedVersionError(_version_message(expected_version, stream_name, version)) from None
        raise EventStoreError(f"Could not append to {stream_name!r} after {_WRITE_ATTEMPTS} attempts.")

    def _write_postgres(
        self,
        stream_name: str,
        message_type: str,
        data: dict[str, Any],
        meta: dict[str, Any] | None,
        expected_version: int | None,
        joined: Connection | None = None,
    ) -> int:
        category = category_of(stream_name)
        with self._errors():
            position = postgres.write(
                self.engine,
                conn=joined,
                stream=stream_name,
                category=category,
                message_id=((meta or {}).get("headers") or {}).get("id"),
                message_type=message_type,
                data=data,
                metadata=meta,
                time=_now(self.domain),
                expected=expected_version,
                lock=_lock_key(category),
            )
        return position

    def _insert(
        self,
        conn: Connection,
        stream_name: str,
        message_type: str,
        data: dict[str, Any],
        meta: dict[str, Any] | None,
        expected_version: int | None,
    ) -> int:
        category = category_of(stream_name)
        version = _stream_version(conn, stream_name)
        if expected_version is not None and expected_version != version:
            raise ExpectedVersionError(_version_message(expected_version, stream_name, version))
        position = version + 1
        conn.execute(
            events.insert().values(
                stream_name=stream_name,
                category=category,
                position=position,
                id=_message_id(meta, stream_name, position),
                type=message_type,
                data=data,
                metadata=meta,
                time=_now(self.domain),
            )
        )
        return position

    def _read(
        self,
        stream_name: str,
        sql: str | None = None,
        position: int = 0,
        no_of_messages: int = 1000,
    ) -> list[dict[str, Any]]:
        query = select(events)
        if stream_name == ALL:
            query = query.where(events.c.global_position >= position).order_by(events.c.global_position)
        elif category_of(stream_name) == stream_name:
            query = query.where(events.c.category == stream_name, events.c.global_position >= position)
            query = query.order_by(events.c.global_position)
        else:
            query = query.where(events.c.stream_name == stream_name, events.c.position >= position)
            query = query.order_by(events.c.position)
        rows = self._fetch(lambda conn: conn.execute(query.limit(no_of_messages)).mappings().all())
        return [_message(row) for row in rows]

    def _read_last_message(self, stream_name: str) -> dict[str, Any] | None:
        query = select(events)
        if stream_name == ALL:
            query = query.order_by(events.c.global_position.desc())
        elif category_of(stream_name) == stream_name:
            query = query.where(events.c.category == stream_name).order_by(events.c.global_position.desc())
        else:
            query = query.where(events.c.stream_name == stream_name).order_by(events.c.position.desc())
        row = self._fetch(lambda conn: conn.execute(query.limit(1)).mappings().first())
        return _message(row) if row is not None else None

    def _stream_identifiers(self, stream_category: str) -> list[str]:
        query = select(events.c.stream_name).where(events.c.category == stream_category).distinct()
        names = self._fetch(lambda conn: conn.execute(query).scalars().all())
        # As Protean's stores: the identifier follows the first "-"; a stream without one is skipped.
        return sorted({ident for name in names if (ident := name.partition("-")[2])})

    def _stream_head_position(self, stream_category: str) -> int:
        query = select(func.max(events.c.global_position))
        if stream_category != ALL:
            query = query.where(events.c.category == stream_category)
        value = self._fetch(lambda conn: conn.execute(query).scalar())
        return -1 if value is None else int(value)

    def _data_reset(self) -> None:
        with self._errors(), self.engine.begin() as conn:
            conn.execute(events.delete())

    # -- helpers ----------------------------------------------------------------

    def _unit_of_work_connection(self) -> Connection | None:
        """The active Unit of Work's connection to this store's database, if it has one."""
        from protean.utils.globals import current_uow

        uow = current_uow
        if not uow or not uow.in_progress:
            return None
        provider = self._shared_provider()
        if provider is None:
            return None
        session = uow.get_session(provider)
        connection = getattr(session, "connection", None)
        return connection() if callable(connection) else None

    def _shared_provider(self) -> str | None:
        if not self._shared_known:
            self._shared, self._shared_known = shared_provider(self.domain, self.engine), True
        return self._shared

    def _fetch(self, read: Callable[[Connection], T]) -> T:
        """One read statement, on a connection of its own; cut mid-statement, once more on a fresh one."""
        # One statement per read: on PostgreSQL autocommit saves BEGIN and ROLLBACK round trips.
        with self._errors():
            return fetch(self.engine, read, autocommit=self._postgres)

    def _version(self, stream_name: str) -> int:
        with self.engine.connect() as conn:
            return _stream_version(conn, stream_name)

    def _errors(self) -> _ErrorTranslator:
        return _ErrorTranslator(safe_url(self.engine.url))


class _ErrorTranslator:
    """Turns driver errors into typed errors that name the fix (never a password)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, _tb: Any) -> None:
        if not isinstance(error, (OperationalError, ProgrammingError)):
            return
        text_ = str(getattr(error, "orig", error)).lower()
        if "no such table" in text_ or ("relation" in text_ and "does not exist" in text_):
            raise EventStoreNotSetUp(
                f"The event store table protean_events does not exist in {self.where}: "
                "run `celery -A <app> protean db setup`."
            ) from None
        if isinstance(error, OperationalError) and not _is_lock_error(text_):
            raise EventStoreError(
                f"The event store database {self.where} cannot be reached: {type(error.orig).__name__}. "
                "Check [event_store] database_uri and that the server is running."
            ) from error


def shared_provider(domain: Any, engine: Engine) -> str | None:
    """The name of the domain's SQL provider whose database is ``engine``'s, if any."""
    mine = _database_identity(engine.url)
    for name, other in provider_engines(domain).items():
        if isinstance(other, Engine) and _database_identity(other.url) == mine:
            return name
    return None


def same_database(first: Engine, second: Engine) -> bool:
    """Whether two engines reach the same database (the same file, or host, port, name and user)."""
    return _database_identity(first.url) == _database_identity(second.url)


def _database_identity(url: Any) -> tuple[Any, ...]:
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        return (backend, os.path.realpath(database) if database and database != ":memory:" else None)
    return (backend, url.host or "localhost", url.port or 5432, url.database, url.username)


def _is_lock_error(text_: str) -> bool:
    return "locked" in text_ or "deadlock" in text_


def _stream_version(conn: Connection, stream_name: str) -> int:
    value = conn.execute(select(func.max(events.c.position)).where(events.c.stream_name == stream_name)).scalar()
    return -1 if value is None else int(value)


def _message_id(meta: dict[str, Any] | None, stream_name: str, position: int) -> str:
    found = ((meta or {}).get("headers") or {}).get("id")
    return str(found) if found else f"{stream_name}-{position}"


def _check_stream(stream_name: str) -> None:
    if not stream_name or stream_name == ALL or not isinstance(stream_name, str):
        raise EventStoreError(
            f"Cannot append to stream {stream_name!r}: write to a named stream such as 'orders::order-42'."
        )


def _version_message(expected: int, stream_name: str, version: int) -> str:
    return f"Wrong expected version: {expected} (Stream: {stream_name}, Stream Version: {version})"


def _lock_key(category: str) -> int:
    # A stable signed 64-bit key per category (Python's hash() is salted per process).
    return int.from_bytes(hashlib.blake2b(category.encode(), digest_size=8).digest(), "big", signed=True)


def _now(domain: Any) -> datetime:
    clock = getattr(domain, "clock", None)
    return clock.now() if clock is not None else datetime.now(UTC)


def _message(row: Any) -> dict[str, Any]:
    return {
        "global_position": row["global_position"],
        "position": row["position"],
        "time": row["time"],
        "id": row["id"],
        "stream_name": row["stream_name"],
        "type": row["type"],
        "data": row["data"],
        "metadata": row["metadata"],
    }
