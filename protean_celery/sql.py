"""SQLAlchemy engines for protean-celery's own tables (I/O).

SQLite engines run in WAL mode with a 30 s busy timeout and emit their own
``BEGIN``: a plain ``BEGIN`` for reads, ``BEGIN IMMEDIATE`` (the database write
lock, taken up front) when a connection asks for ``execution_options(immediate=True)``.
That is how two processes appending to one SQLite store serialise instead of
failing half-way. Server engines (PostgreSQL) pre-ping each pooled connection
as it is checked out, so a connection left stale by a database restart is
replaced, not handed to the caller: the first call after a restart succeeds;
their reads cut mid-statement can be repeated (:mod:`protean_celery.cut_reads`).
Errors never show a password.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, create_engine, event, select
from sqlalchemy.engine import URL, Connection, Engine, make_url

from protean_celery.cut_reads import fetch, watch_reads
from protean_celery.errors import ConfigurationError
from protean_celery.protean_api import provider_engines
from protean_celery.redact import redact_url

__all__ = ["make_engine", "safe_url", "parse_url", "tune_sqlite", "existing_pairs"]


def parse_url(uri: str, where: str) -> URL:
    """Parse ``uri`` or raise a ``ConfigurationError`` naming the setting ``where``."""
    try:
        return make_url(uri)
    except Exception:
        raise ConfigurationError(
            f"{where} is not a database URI SQLAlchemy understands "
            "(e.g. sqlite:///path/events.db or postgresql://user@host/db)."
        ) from None


def safe_url(url: URL | str) -> str:
    """``url`` with its password hidden, for messages and logs (see :mod:`protean_celery.redact`)."""
    return redact_url(url)


def make_engine(uri: str, where: str, **pool: Any) -> Engine:
    """An engine for ``uri`` (see the module docstring for SQLite's handling)."""
    url = parse_url(uri, where)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})
        _sqlite_transactions(engine)
        return engine
    options = {"pool_size": 5, "max_overflow": 10, "pool_pre_ping": True, **pool}
    engine = create_engine(url, **options)
    watch_reads(engine)
    return engine


def _sqlite_transactions(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def tune_sqlite(domain: Any) -> None:
    """WAL mode, ``synchronous=NORMAL`` and a 30 s busy timeout on the domain's SQLite databases.

    Protean's SQLite provider opens files in rollback-journal mode with a 5 s
    timeout, where concurrent prefork children fail with "database is locked".
    Hooks the providers' engines (a SQLAlchemy event, no Protean code changed)
    and drops their pooled connections so every new one is tuned.
    """
    for engine in provider_engines(domain).values():
        if engine.dialect.name != "sqlite" or getattr(engine, "_protean_celery_tuned", False):
            continue
        event.listen(engine, "connect", _pragmas)
        engine._protean_celery_tuned = True  # type: ignore[attr-defined]
        engine.dispose()


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def existing_pairs(
    engine: Engine, first: Column[Any], second: Column[Any], pairs: Iterable[tuple[str, str]], chunk: int = 500
) -> set[tuple[str, str]]:
    """Which ``(first, second)`` value pairs have a row (looked up by ``first IN (...)``, in chunks)."""
    wanted = set(pairs)
    if not wanted:
        return set()
    values = sorted({value for value, _other in wanted})

    def read(conn: Connection) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for start in range(0, len(values), chunk):
            query = select(first, second).where(first.in_(values[start:start + chunk]))
            found.update((str(a), str(b)) for a, b in conn.execute(query))
        return found

    # A read only: on PostgreSQL without BEGIN and ROLLBACK round trips; repeated once if cut.
    return fetch(engine, read, autocommit=engine.dialect.name == "postgresql") & wanted
