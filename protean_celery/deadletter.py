"""Dead letters: messages a handler task could not handle, kept with their error (I/O).

A message lands here instead of vanishing when its payload is not a Protean
message (or its checksum is wrong), is too large or of another domain, when no
handler accepts its type, or when a handler failed on every retry; also when the
worker's consumer turns it away before any task runs (see ``consumer.py``) and
when the command relay cannot publish it. Each entry keeps the task and handler, the
message, the error and traceback, the attempts, and the first and last failure
times. ``replay`` republishes the message to the original handler's exchange
with its category as routing key, then removes the entry. Works on any Celery
broker: the store is a table in the relay's state database.
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, Text, delete, func, select

from protean_celery.cut_reads import fetch
from protean_celery.errors import DeadLetterError
from protean_celery.sql import existing_pairs
from protean_celery.table_store import TableStore

__all__ = ["DeadLetter", "DeadLetters", "dead_letters_table"]

metadata = MetaData()

dead_letters_table = Table(
    "protean_celery_dead_letters",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("task", String(255), nullable=False, index=True),
    Column("category", String(255), nullable=True, index=True),
    Column("message_type", String(255), nullable=True),
    Column("message_id", String(255), nullable=True),
    Column("payload", JSON, nullable=True),
    Column("error", Text, nullable=False),
    Column("traceback", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=1),
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False, index=True),
)


@dataclass(frozen=True)
class DeadLetter:
    """One parked message."""

    id: str
    task: str
    category: str | None
    message_type: str | None
    message_id: str | None
    payload: Any
    error: str
    traceback: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime


class DeadLetters(TableStore):
    """The dead-letter store on ``engine`` (a SQLAlchemy engine)."""

    table = dead_letters_table

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def park(self, task: str, payload: Any, error: BaseException, attempts: int = 1) -> str:
        """Keep ``payload`` with ``error``; a message parked again for the same task updates its entry."""
        headers = _headers(payload)
        now = datetime.now(UTC)
        text = f"{type(error).__name__}: {error}"
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        safe_payload = payload if _json_safe(payload) else repr(payload)
        key = _message_key(payload)
        with self.writing() as conn:
            existing = None
            if key:
                # The same message again (a replay that failed again), never merely the same
                # headers.id: a command's id is its aggregate's id, and a tampered copy keeps it.
                candidates = conn.execute(
                    select(dead_letters_table.c.id, dead_letters_table.c.payload).where(
                        dead_letters_table.c.task == task, dead_letters_table.c.message_id == key
                    )
                )
                existing = next((row.id for row in candidates if row.payload == safe_payload), None)
            if existing:
                conn.execute(
                    dead_letters_table.update().where(dead_letters_table.c.id == existing).values(
                        error=text, traceback=trace, attempts=dead_letters_table.c.attempts + attempts,
                        last_failed_at=now,
                    )
                )
                return str(existing)
            entry_id = str(uuid.uuid4())
            conn.execute(
                dead_letters_table.insert().values(
                    id=entry_id, task=task, category=_category(payload), message_type=headers.get("type"),
                    message_id=key, payload=safe_payload,
                    error=text, traceback=trace, attempts=attempts, first_failed_at=now, last_failed_at=now,
                )
            )
            return entry_id

    def parked(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which ``(task, message key)`` pairs have an entry."""
        found = existing_pairs(
            self.engine, dead_letters_table.c.message_id, dead_letters_table.c.task, ((k, t) for t, k in pairs)
        )
        return {(task, key) for key, task in found}

    def list(
        self, task: str | None = None, category: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Entries, newest failure first, filtered by task, category and time."""
        query = select(dead_letters_table).order_by(dead_letters_table.c.last_failed_at.desc()).limit(limit)
        query = _filtered(query, task, category, since)
        return fetch(self.engine, lambda conn: [DeadLetter(**dict(row)) for row in conn.execute(query).mappings()])

    def get(self, entry_id: str) -> DeadLetter:
        """One entry.

        Raises:
            DeadLetterError: no entry has this id.
        """
        row = self.first(dead_letters_table.c.id == entry_id)
        if row is None:
            raise DeadLetterError(f"No dead letter {entry_id!r}: `celery -A <app> protean dlq list` shows the ids.")
        return DeadLetter(**row)

    def remove(self, entry_id: str) -> None:
        """Delete one entry."""
        with self.writing() as conn:
            conn.execute(delete(dead_letters_table).where(dead_letters_table.c.id == entry_id))

    def purge(self, task: str | None = None, category: str | None = None) -> int:
        """Delete the entries that match; returns how many."""
        statement = _filtered(delete(dead_letters_table), task, category, None)
        with self.writing() as conn:
            return int(conn.execute(statement).rowcount or 0)

    def prune(self, older_than: datetime) -> int:
        """Delete the entries whose last failure is before ``older_than``; returns how many."""
        statement = delete(dead_letters_table).where(dead_letters_table.c.last_failed_at < older_than)
        with self.writing() as conn:
            return int(conn.execute(statement).rowcount or 0)

    def depth(self) -> dict[str, int]:
        """Entries per task."""
        query = select(dead_letters_table.c.task, func.count()).group_by(dead_letters_table.c.task)
        return fetch(self.engine, lambda conn: {str(task): int(count) for task, count in conn.execute(query)})


def _filtered(statement: Any, task: str | None, category: str | None, since: datetime | None) -> Any:
    if task:
        statement = statement.where(dead_letters_table.c.task == task)
    if category:
        statement = statement.where(dead_letters_table.c.category == category)
    if since:
        statement = statement.where(dead_letters_table.c.last_failed_at >= since)
    return statement


def _headers(payload: Any) -> dict[str, Any]:
    if isinstance(payload, dict):
        headers = (payload.get("metadata") or {}).get("headers") if isinstance(payload.get("metadata"), dict) else None
        return headers if isinstance(headers, dict) else {}
    return {}


def _message_key(payload: Any) -> str | None:
    """``headers.id`` for an event, ``stream@position`` for a command (their ids are not unique)."""
    headers = _headers(payload)
    if not headers.get("id"):
        return None
    domain = payload["metadata"].get("domain") if isinstance(payload.get("metadata"), dict) else None
    store = payload["metadata"].get("event_store") if isinstance(payload.get("metadata"), dict) else None
    if isinstance(domain, dict) and domain.get("kind") == "COMMAND" and isinstance(store, dict):
        if store.get("position") is not None:
            return f"{headers.get('stream') or ''}@{store['position']}"
    return str(headers["id"])


def _category(payload: Any) -> str | None:
    if isinstance(payload, dict) and isinstance(payload.get("metadata"), dict):
        domain = payload["metadata"].get("domain")
        if isinstance(domain, dict) and domain.get("stream_category"):
            return str(domain["stream_category"])
        stream = _headers(payload).get("stream")
        if stream:
            return str(stream).partition("-")[0]
    return None


def _json_safe(payload: Any) -> bool:
    try:
        json.dumps(payload)
        return True
    except (TypeError, ValueError):
        return False
