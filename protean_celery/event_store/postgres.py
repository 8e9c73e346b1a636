"""The PostgreSQL write path of the SQL event store: one round trip per append.

``setup()`` installs ``protean_celery_write()``, a PL/pgSQL function that takes the
category's advisory lock, checks the expected version, inserts the next position
and returns it, as Message DB's ``write_message`` does. Alone, an append runs in
autocommit: a single statement and its own transaction. Inside a Unit of Work
on the same database it runs on the Unit of Work's connection instead, and the
category lock is held until that transaction commits.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from protean.exceptions import ExpectedVersionError
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

__all__ = ["WRITE_FUNCTION", "install_write_function", "write"]

WRITE_FUNCTION = """
CREATE OR REPLACE FUNCTION protean_celery_write(
    _stream text, _category text, _id varchar, _type varchar, _data jsonb, _metadata jsonb,
    _time timestamptz, _expected bigint, _lock bigint
) RETURNS bigint AS $$
DECLARE
    _version bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(_lock);
    SELECT coalesce(max(position), -1) INTO _version FROM protean_events WHERE stream_name = _stream;
    IF _expected IS NOT NULL AND _expected <> _version THEN
        RAISE EXCEPTION 'Wrong expected version: % (Stream: %, Stream Version: %)', _expected, _stream, _version
            USING ERRCODE = 'P0001';
    END IF;
    INSERT INTO protean_events (stream_name, category, position, id, type, data, metadata, time)
    VALUES (_stream, _category, _version + 1, coalesce(_id, _stream || '-' || (_version + 1)),
            _type, _data, _metadata, _time);
    RETURN _version + 1;
END;
$$ LANGUAGE plpgsql
"""

_CALL = text(
    "SELECT protean_celery_write(:stream, :category, :id, :type, CAST(:data AS jsonb), "
    "CAST(:metadata AS jsonb), :time, :expected, :lock)"
)


def install_write_function(engine: Engine) -> None:
    """Create or replace ``protean_celery_write()``."""
    with engine.begin() as conn:
        conn.execute(text(WRITE_FUNCTION))


def write(
    engine: Engine,
    *,
    conn: Connection | None = None,
    stream: str,
    category: str,
    message_id: str | None,
    message_type: str,
    data: dict[str, Any],
    metadata: dict[str, Any] | None,
    time: datetime,
    expected: int | None,
    lock: int,
) -> int:
    """Append one message; return its position.

    Args:
        conn: run on this connection, in its transaction (default: an autocommit
            connection of ``engine``).

    Raises:
        ExpectedVersionError: the stream is not at ``expected``.
    """
    params = {
        "stream": stream, "category": category, "id": message_id, "type": message_type,
        "data": json.dumps(data, default=str),
        "metadata": None if metadata is None else json.dumps(metadata, default=str),
        "time": time, "expected": expected, "lock": lock,
    }
    try:
        if conn is not None:
            return int(conn.execute(_CALL, params).scalar_one())
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as own:
            return int(own.execute(_CALL, params).scalar_one())
    except DBAPIError as error:
        message = str(error.orig)
        if "Wrong expected version" in message:
            raise ExpectedVersionError(message.splitlines()[0].strip()) from None
        raise
