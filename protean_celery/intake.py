"""What a task payload must be before a handler sees it. Pure: no I/O.

* **small enough**: its JSON encoding is at most ``[custom.celery] max_payload_bytes``
  (the relay refuses to publish a larger one, a task parks it);
* **of this domain**: a stream category ``<domain>::…`` or a type ``<Domain>.Name.vN``
  of another domain means the message reached this app's queue by mistake, unless
  the handler subscribes to that category or the domain registers that type (an
  external event);
* **of a known type**: a type the domain neither registers nor upcasts can never be
  rebuilt, so no retry can help.

Each check raises a :class:`~protean_celery.errors.MessageError`; the task body
dead-letters the message and rejects it without requeue.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from protean.utils.eventing import Message

from protean_celery.envelope import describe, metadata_of
from protean_celery.errors import ForeignMessageError, PayloadTooLarge, UnknownHandlerError
from protean_celery.registry import HandlerSpec

__all__ = ["payload_size", "check_size", "category_of", "check_domain", "check_type"]


def payload_size(payload: Any) -> int:
    """Bytes of ``payload`` as compact UTF-8 JSON (what a task argument costs on the wire)."""
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))


def check_size(payload: Any, limit: int, where: str) -> None:
    """Raise when ``payload`` is above ``limit`` bytes (``0``: no limit).

    Raises:
        PayloadTooLarge: the payload is larger than ``limit``.
    """
    if limit <= 0:
        return
    size = payload_size(payload)
    if size > limit:
        raise PayloadTooLarge(
            f"{where}: the payload is {size} bytes, above [custom.celery] max_payload_bytes = {limit}. "
            "Keep large data out of messages (store it, send its id) or raise max_payload_bytes.",
            size=size,
            limit=limit,
        )


def category_of(message: Message) -> str | None:
    """The message's stream category: ``metadata.domain.stream_category``, else its stream's prefix."""
    metadata = metadata_of(message)
    category = getattr(metadata.domain, "stream_category", None) if metadata.domain else None
    if category:
        return str(category)
    stream = metadata.headers.stream if metadata.headers else None
    return str(stream).partition("-")[0] if stream else None


def check_domain(
    message: Message, spec: HandlerSpec, domain: str, camel_name: str, known_types: Collection[str]
) -> None:
    """Raise when ``message`` belongs to another domain than ``domain``.

    Args:
        message: the decoded message.
        spec: the handler the message was sent to.
        domain: this domain's normalized name (``orders``), the prefix of its stream categories.
        camel_name: this domain's camel-case name (``Orders``), the prefix of its message types.
        known_types: every type the domain registers, external events included.

    Raises:
        ForeignMessageError: the category or type names another domain.
    """
    category = category_of(message)
    owner, separator, _ = (category or "").partition("::")
    if separator and owner != domain and category not in spec.categories:
        raise ForeignMessageError(
            f"{describe(message)} is in stream category {category!r} of domain {owner!r}, but this worker "
            f"runs domain {domain!r} and {spec.path} does not subscribe to it. Send it to the {owner!r} "
            f"app's queues, or subscribe the handler to {category!r} (stream_categories=[...]).",
            message_domain=owner,
            domain=domain,
            category=category,
        )
    message_type = str(metadata_of(message).headers.type or "")
    prefix = message_type.split(".", 1)[0] if message_type.count(".") >= 2 else ""
    if prefix and prefix != camel_name and message_type not in known_types:
        raise ForeignMessageError(
            f"{describe(message)} is a message of domain {prefix!r}, but this worker runs domain "
            f"{camel_name!r}, which does not register {message_type}. Send it to the {prefix!r} app, or "
            "register it here with domain.register_external_event(...).",
            message_domain=prefix,
            domain=camel_name,
            message_type=message_type,
        )


def check_type(message: Message, spec: HandlerSpec, resolve: Callable[[str], Any]) -> None:
    """Raise when no class of the domain, directly or through an upcaster, rebuilds ``message``.

    A message without a type is left to Protean, which raises ``DeserializationError``.

    Args:
        message: the decoded message.
        spec: the handler the message was sent to.
        resolve: type string → the event or command class, or ``None``.

    Raises:
        UnknownHandlerError: the type is unknown to the domain.
    """
    message_type = metadata_of(message).headers.type
    if message_type and resolve(str(message_type)) is None:
        raise UnknownHandlerError(
            f"{spec.path} cannot handle {describe(message)}: the domain registers no event or command "
            f"{message_type!r} and no upcaster raises it to one. Register the type (or an upcaster), "
            "or stop sending it.",
            message_type=message_type,
            handler=spec.path,
        )
