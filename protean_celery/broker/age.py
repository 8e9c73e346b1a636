"""How long a task message has been waiting: the age of the Protean message it carries. Pure.

Neither Celery nor Kombu stamps a task message with the time it was sent. A
handler task's only argument is a Protean message dict, whose
``metadata.headers.time`` is when the message was written (the event raised or
the command processed). Its age is therefore the message's whole delay so far:
the time spent in the outbox or the event store before the relay published it,
plus the time on the queue (and any retry delays). A message that is not a
Protean message (a foreign or poison task) has no age.

``message_age(channel, raw)`` reads a message as Kombu's virtual transports
(Redis, memory) keep it: a dict with the encoded ``body``, its
``content-type``, ``content-encoding`` and ``properties.body_encoding``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kombu.serialization import loads

__all__ = ["message_age", "written_at"]


def message_age(channel: Any, raw: Any, now: datetime | None = None) -> float | None:
    """Seconds since the Protean message inside the task message ``raw`` was written, or ``None``.

    Args:
        channel: the Kombu virtual channel that stored ``raw`` (it decodes the body).
        raw: the stored message dict.
        now: the time to measure from (default: now, UTC).
    """
    try:
        body = channel.decode_body(raw["body"], raw["properties"].get("body_encoding"))
        decoded = loads(body, raw.get("content-type"), raw.get("content-encoding") or "utf-8")
    except Exception:  # a body this channel cannot decode: no age, never an error
        return None
    written = written_at(_first_argument(decoded))
    if written is None:
        return None
    return max(((now or datetime.now(UTC)) - written).total_seconds(), 0.0)


def written_at(payload: Any) -> datetime | None:
    """``metadata.headers.time`` of a Protean message dict (timezone-aware, UTC when naive), or ``None``."""
    try:
        value = payload["metadata"]["headers"]["time"]
        written = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except (TypeError, KeyError, ValueError):
        return None
    return written if written.tzinfo else written.replace(tzinfo=UTC)


def _first_argument(body: Any) -> Any:
    """The task's first positional argument (Celery's message protocol 2 body: ``[args, kwargs, embed]``)."""
    if isinstance(body, list | tuple) and body and isinstance(body[0], list | tuple) and body[0]:
        return body[0][0]
    if isinstance(body, Mapping) and isinstance(body.get("args"), list | tuple) and body["args"]:
        return body["args"][0]  # protocol 1
    return None
