"""Protean's ``sequential_by`` under Celery: one message per key at a time, per handler. Pure.

Protean routes the messages of a ``sequential_by`` handler to one partition
stream per key value, so one consumer takes them in order. Here the handler
task takes, for its whole Unit of Work, the inbox's lock on
``<handler path>|<field>=<value>`` (``pg_advisory_xact_lock`` on PostgreSQL; on
SQLite the inbox marker's insert already serialises writers): two workers never
handle two messages of one key at once. The key is the named field of the
message (event handlers, projectors, command handlers: ``sequential_by="order_id"``)
or, for a process manager (``sequential_by=True``), the event field its
``correlate=`` names. Messages of one key are taken in their queue's order, but a
retried one comes back behind the later ones: serialised, not strictly ordered
after a failure.

A message without a value for that field cannot be keyed: it is dead-lettered at
once with :class:`~protean_celery.errors.SequentialKeyMissing`, never handled
unserialised.
"""

from __future__ import annotations

from typing import Any

from protean_celery.envelope import describe, metadata_of
from protean_celery.errors import SequentialKeyMissing
from protean_celery.protean_api import process_manager_methods
from protean_celery.registry import HandlerSpec

__all__ = ["sequential_field", "sequential_key"]


def sequential_field(handler_cls: Any, message_type: str) -> str | None:
    """The message field ``handler_cls`` is sequential by for ``message_type``; ``None`` when it is not."""
    declared = getattr(getattr(handler_cls, "meta_", None), "sequential_by", None)
    if not declared:
        return None
    if declared is not True:
        return str(declared)
    for method in process_manager_methods(handler_cls, message_type):  # a process manager: its correlate field
        spec = getattr(method, "_correlate", None)
        if isinstance(spec, str):
            return spec
        if isinstance(spec, dict) and spec:
            return str(next(iter(spec.values())))
    return None


def sequential_key(spec: HandlerSpec, message: Any) -> str | None:
    """The lock key that serialises ``message`` with the others of its key; ``None`` for a handler without one.

    Raises:
        SequentialKeyMissing: the message has no value for the handler's ``sequential_by`` field.
    """
    message_type = str(metadata_of(message).headers.type)
    handler_cls = spec.handler_for(message_type)
    field = sequential_field(handler_cls, message_type) if handler_cls is not None else None
    if field is None:
        return None
    value = (message.data or {}).get(field)
    if value is None or value == "":
        raise SequentialKeyMissing(
            f"{describe(message)} has no {field!r}, which {handler_cls.__name__} is sequential_by: it cannot be "
            f"handled in turn with the others of its key. Send it with {field} set, then purge this dead letter."
        )
    return f"{spec.path}|{field}={value}"
