"""A broker message on its way to a subscriber task, and what it must be. Pure: no I/O.

The bridge wraps each message it reads into the task's only argument::

    {"broker": "payments", "stream": "charges", "id": "1734567890123-0", "payload": {...}}

``id`` is the broker's message id (a Redis Streams entry id), unique in its
stream, so ``<broker>:<stream>@<id>`` keys the inbox: each message is handled
once per subscriber however often it is delivered. When the broker could not
decode the entry (Protean's Redis adapter gives ``{}`` for a body that is not
JSON), the bridge adds the entry's raw fields as ``raw`` so the dead letter
keeps what was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protean_celery.errors import DecodeError

__all__ = ["Delivery", "delivery_key", "wrap", "unwrap", "describe_delivery"]


@dataclass(frozen=True)
class Delivery:
    """One broker message for one subscriber.

    Attributes:
        broker: the Protean broker's name.
        stream: the stream it was read from.
        id: the broker's message id.
        payload: the message, as the subscriber's ``__call__`` receives it.
    """

    broker: str
    stream: str
    id: str
    payload: dict[str, Any]

    @property
    def key(self) -> str:
        """The inbox key: ``<broker>:<stream>@<id>``."""
        return delivery_key(self.broker, self.stream, self.id)


def delivery_key(broker: str, stream: str, message_id: str) -> str:
    """``<broker>:<stream>@<id>``: unique per broker message (the inbox key, the task id's seed)."""
    return f"{broker}:{stream}@{message_id}"


def wrap(broker: str, stream: str, message_id: str, payload: Any, raw: Any = None) -> dict[str, Any]:
    """The task argument for one message read from ``stream`` (``raw``: the undecoded entry, if any)."""
    envelope = {"broker": broker, "stream": stream, "id": str(message_id), "payload": payload}
    if raw is not None:
        envelope["raw"] = raw
    return envelope


def unwrap(envelope: Any) -> Delivery:
    """The delivery in a subscriber task's argument.

    Raises:
        DecodeError: the argument is not a bridge envelope, or its payload is not a
            non-empty dict (a body that was not JSON, or JSON that is not an object).
    """
    if not isinstance(envelope, Mapping) or not all(envelope.get(key) for key in ("broker", "stream", "id")):
        raise DecodeError(
            "Subscriber task argument is not a broker message envelope (a dict with broker, stream, id and "
            f"payload, got {type(envelope).__name__}): only the subscriber bridge should send these tasks.",
        )
    payload = envelope.get("payload")
    where = f"message {envelope['id']} of stream {envelope['stream']!r} (broker {envelope['broker']!r})"
    if not isinstance(payload, Mapping):
        raise DecodeError(
            f"{where} is JSON but not an object ({type(payload).__name__}): a subscriber takes a dict. "
            "Fix the producer; the message is kept in the dead letters.",
        )
    if not payload:
        raise DecodeError(
            f"{where} is empty or not JSON (the broker could not decode it; the raw entry is kept in the dead "
            "letter): a subscriber takes a JSON object. Fix the producer.",
        )
    return Delivery(str(envelope["broker"]), str(envelope["stream"]), str(envelope["id"]), dict(payload))


def describe_delivery(envelope: Any) -> str:
    """``<stream>@<id>`` for log lines and Flower's argument column (never the payload: it may hold personal data)."""
    if isinstance(envelope, Mapping):
        return f"stream={envelope.get('stream', '?')} id={envelope.get('id', '?')}"
    return "<not a broker message envelope>"
