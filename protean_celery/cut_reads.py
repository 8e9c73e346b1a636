"""A read cut mid-statement runs once more, on a fresh connection; a write never does (I/O).

Pools pre-ping, so a connection left dead by a database restart is never handed
out. A statement already running when its connection is cut (PostgreSQL
crash-restarted during it, ``pg_terminate_backend``, a proxy dropping the link)
still fails. When that statement is a read and its transaction had only read, the
cut changed nothing: it is run again, once, on a fresh connection (after waiting up
to :data:`RECONNECT_SECONDS` for the database to accept connections again), and the
caller gets its result. A transaction that had written is never replayed: its
commit may or may not have happened, and only the caller can tell (look the row
up before writing again).

* :func:`watch_reads` tracks, per connection, whether the open transaction has run
  anything but a plain ``SELECT`` built with SQLAlchemy (text statements, ``FOR
  UPDATE`` and flushes count as writes), and marks a cut read as safe to repeat.
* :func:`retry_cut_read` and :func:`fetch` repeat a read made with our own engines
  (the SQL event store, the dead letters).
* :func:`retry_cut_reads` hooks Protean's SQLAlchemy providers (repositories and
  DAOs) through SQLAlchemy's ``do_orm_execute`` session event, without changing
  Protean: the cut transaction is rolled back and the statement runs in a new one.

SQLite connections are local files and are never cut: they are left alone.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

from protean_celery.protean_api import provider_engines, provider_sessions
from protean_celery.redact import redact_url

__all__ = ["RECONNECT_SECONDS", "watch_reads", "read_was_cut", "retry_cut_read", "fetch", "retry_cut_reads"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a repeated read waits for the database to accept connections (a crash-restart takes about a second).
RECONNECT_SECONDS = 15.0

_WROTE = "protean_celery.wrote"
_CUT_READ = "_protean_celery_cut_read"
_LOCKING = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|SHARE|KEY\s+SHARE)\b", re.IGNORECASE)


def watch_reads(engine: Engine) -> None:
    """Track writes per transaction on ``engine`` and mark its cut reads (idempotent; not for SQLite)."""
    if engine.dialect.name == "sqlite" or event.contains(engine, "handle_error", _mark_cut_read):
        return
    event.listen(engine, "checkout", _fresh_record)
    event.listen(engine, "begin", _fresh_transaction)
    event.listen(engine, "before_cursor_execute", _note_statement)
    event.listen(engine, "handle_error", _mark_cut_read)


def read_was_cut(error: BaseException) -> bool:
    """Whether ``error`` is a read cut mid-statement in a transaction that had only read (safe to repeat)."""
    return isinstance(error, DBAPIError) and bool(getattr(error, _CUT_READ, False))


def retry_cut_read(engine: Engine, read: Callable[[], T]) -> T:
    """``read()``; when its connection is cut mid-statement, once more on a fresh one.

    Args:
        engine: the engine ``read`` uses (watched with :func:`watch_reads`).
        read: checks a connection out of ``engine``, reads and returns the result.

    Raises:
        sqlalchemy.exc.DBAPIError: the first error when it is not a cut read; the
            second attempt's error when the repeat fails too (the database did not
            come back within :data:`RECONNECT_SECONDS`).
    """
    try:
        return read()
    except DBAPIError as error:
        if not read_was_cut(error):
            raise
        _reconnect(engine, error)
        return read()


def fetch(engine: Engine, read: Callable[[Connection], T], autocommit: bool = False) -> T:
    """``read(conn)`` on a connection of its own from ``engine``, repeated once on a fresh one when cut.

    Args:
        engine: one of our engines (:func:`~protean_celery.sql.make_engine` watches it).
        read: runs the read statement(s) on the connection and returns the result.
        autocommit: run in autocommit (one statement, no ``BEGIN``/``ROLLBACK`` round trips).

    Raises:
        sqlalchemy.exc.DBAPIError: as :func:`retry_cut_read`.
    """

    def attempt() -> T:
        with engine.connect() as conn:
            return read(conn.execution_options(isolation_level="AUTOCOMMIT") if autocommit else conn)

    return retry_cut_read(engine, attempt)


def retry_cut_reads(domain: Any) -> None:
    """Repeat cut reads of Protean's SQLAlchemy repositories on server databases (idempotent).

    Args:
        domain: the initialised domain.
    """
    engines = provider_engines(domain)
    for name, sessions in provider_sessions(domain).items():
        engine = engines.get(name)
        if engine is None or engine.dialect.name == "sqlite":
            continue
        watch_reads(engine)
        if not event.contains(sessions, "do_orm_execute", _repeat_cut_select):
            event.listen(sessions, "do_orm_execute", _repeat_cut_select)


def _repeat_cut_select(state: Any) -> Any:
    """``do_orm_execute``: run the statement; a cut read rolls the session back and runs in a new transaction."""
    if not state.is_select:
        return None
    try:
        return state.invoke_statement()
    except DBAPIError as error:
        if not read_was_cut(error):
            raise
        state.session.rollback()  # the cut transaction had only read: nothing is lost
        _reconnect(state.session.get_bind(), error)
        return state.invoke_statement()


def _reconnect(engine: Engine, error: DBAPIError) -> None:
    """Wait until ``engine`` can connect again (a pre-pinged, fresh connection), up to :data:`RECONNECT_SECONDS`."""
    logger.warning("a read on %s was cut mid-statement (%s); running it again on a fresh connection",
                   redact_url(engine.url), type(error.orig).__name__)
    deadline = time.monotonic() + RECONNECT_SECONDS
    delay = 0.05
    while True:
        try:
            with engine.connect():
                return
        except DBAPIError:
            if time.monotonic() + delay > deadline:
                return  # the repeat fails and says why
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _fresh_record(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    record.info[_WROTE] = False


def _fresh_transaction(conn: Any) -> None:
    conn.info[_WROTE] = False


def _note_statement(conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool) -> None:
    if not _plain_read(context, statement):
        conn.info[_WROTE] = True


def _mark_cut_read(context: Any) -> None:
    """``handle_error``: before the connection is invalidated (and its info cleared), judge the cut."""
    conn, error = context.connection, context.sqlalchemy_exception
    if context.is_pre_ping or not context.is_disconnect or conn is None or error is None:
        return
    if conn.info.get(_WROTE) is False:
        setattr(error, _CUT_READ, True)


def _plain_read(context: Any, statement: str) -> bool:
    compiled = getattr(context, "compiled", None)
    return isinstance(getattr(compiled, "statement", None), Select) and not _LOCKING.search(statement)
