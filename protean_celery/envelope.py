"""Protean messages ⇄ Celery task payloads. Pure.

A task's only argument is ``Message.to_dict()``: plain JSON (times are ISO
strings), carrying Protean's envelope checksum, which :func:`decode` verifies.

Message identity: an event's ``headers.id`` is unique, but a command's is the
aggregate's identifier (``PlaceOrder`` and ``ShipOrder`` for order ``o9`` both
have id ``o9``), so a command is keyed by its place in the event store,
``<stream>@<position>``, never by ``headers.id`` alone.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from protean.utils.eventing import Message, Metadata

from protean_celery.errors import DecodeError

__all__ = ["encode", "decode", "message_key", "task_id", "describe", "metadata_of"]

_TASK_ID_NAMESPACE = uuid.UUID("6f1c2b8e-7a43-4d4e-9a55-3c2f0e1b9d10")


def encode(message: Message) -> dict[str, Any]:
    """The task payload of ``message`` (JSON-safe)."""
    return message.to_dict()


def decode(payload: Any, require_checksum: bool = True) -> Message:
    """Rebuild and verify a Protean message from a task payload.

    Args:
        payload: the task's argument.
        require_checksum: refuse a payload without ``metadata.envelope.checksum``
            (``[custom.celery] accept_unsigned = true`` turns this off).

    Raises:
        DecodeError: the payload is not a Protean message dict, has no checksum
            (when one is required), or its checksum does not match its data.
    """
    if not isinstance(payload, Mapping) or "data" not in payload or "metadata" not in payload:
        raise DecodeError(
            f"Task payload is not a Protean message (expected a dict with 'data' and 'metadata', "
            f"got {type(payload).__name__}).",
            payload=_preview(payload),
        )
    try:
        # A deep copy: Protean fills missing metadata parts in place, and the
        # dead letters must keep the payload exactly as it arrived.
        message = Message.deserialize(copy.deepcopy(dict(payload)), validate=False)
    except Exception as exc:  # Protean raises several types here; all mean "poison"
        raise DecodeError(
            f"Task payload could not be decoded as a Protean message: {exc}",
            payload=_preview(payload),
        ) from exc
    envelope = message.metadata.envelope if message.metadata else None
    if require_checksum and (envelope is None or not envelope.checksum):
        raise DecodeError(
            "Task payload has no checksum (metadata.envelope.checksum), so it may have been forged or tampered "
            "with: messages written by Protean always carry one. Find who sent it; set [custom.celery] "
            "accept_unsigned = true only while migrating from unsigned producers.",
            payload=_preview(payload),
        )
    if envelope is not None and envelope.checksum and not message.verify_integrity():
        raise DecodeError(
            "Task payload failed Protean's checksum check: metadata.envelope.checksum does not match its "
            "data, so the data was changed after the message was written. Find what rewrote it; do not "
            "replay it as is.",
            payload=_preview(payload),
        )
    metadata_of(message)
    return message


def message_key(message: Message) -> str:
    """A key unique per message: ``headers.id`` for events, ``stream@position`` for commands."""
    metadata = metadata_of(message)
    kind = getattr(metadata.domain, "kind", None) if metadata.domain else None
    if kind == "COMMAND":
        store = metadata.event_store
        stream = metadata.headers.stream or ""
        if store is not None and store.position is not None:
            return f"{stream}@{store.position}"
        if store is not None and store.global_position is not None:
            return f"{stream}@g{store.global_position}"
    return str(metadata.headers.id)


def task_id(task_name: str, key: str) -> str:
    """A deterministic task id: the same message for the same handler has the same id."""
    return str(uuid.uuid5(_TASK_ID_NAMESPACE, f"{task_name}|{key}"))


def metadata_of(message: Message) -> Metadata:
    """The message's metadata (every decoded or stored Protean message has one)."""
    if message.metadata is None:
        raise DecodeError("A Protean message without metadata cannot be routed or handled.")
    return message.metadata


def describe(message: Message) -> str:
    """``Type id`` for log lines (never the payload: it may hold personal data)."""
    headers = metadata_of(message).headers
    return f"{headers.type} {headers.id}"


def _preview(payload: Any, limit: int = 200) -> str:
    text = repr(payload)
    return text if len(text) <= limit else text[:limit] + "…"
