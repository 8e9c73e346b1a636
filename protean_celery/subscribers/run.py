"""Run one broker message through one subscriber, synchronously, as Protean's server does.

Protean's ``Engine.handle_broker_message`` is an Engine-bound coroutine that
swallows errors; this is the sync equivalent a Celery task needs, and it
re-raises so Celery can retry. As Protean does, it opens a domain context, sets
``g.message_in_context`` to a ``BROKER_MESSAGE`` carrying the payload's
correlation id (or a new one) and the source event's id (or the broker's), so
commands the subscriber issues continue the causal chain; then calls
``Subscriber()(payload)``, and ``handle_error`` on failure.

Unlike Protean's server, the call runs in one Unit of Work with the inbox
marker ``(<broker>:<stream>@<id>, subscriber)``: what the subscriber changes and
the marker commit together, so a redelivered message is acknowledged without
running the subscriber again.
"""

from __future__ import annotations

import logging
from typing import Any

from protean.utils.eventing import DomainMeta, Message, MessageHeaders, Metadata
from protean.utils.globals import g

from protean_celery.inbox import Inbox
from protean_celery.protean_api import broker_correlation_id, broker_source_id
from protean_celery.subscribers.delivery import Delivery

__all__ = ["run_subscriber"]

logger = logging.getLogger(__name__)


def run_subscriber(domain: Any, subscriber_cls: Any, delivery: Delivery, inbox: Inbox | None = None) -> bool:
    """Call ``subscriber_cls()(delivery.payload)`` in a fresh domain context, once per message.

    Args:
        domain: the initialised Protean domain.
        subscriber_cls: the ``@domain.subscriber`` class.
        delivery: the broker message.
        inbox: records the message as handled in the subscriber's Unit of Work.

    Returns:
        ``False`` when the inbox says this subscriber already handled the message; ``True`` otherwise.

    Raises:
        Exception: whatever the subscriber raised, after its ``handle_error`` was called.
    """
    with domain.domain_context():
        g.message_in_context = _context_message(delivery)
        try:
            if inbox is None:
                subscriber_cls()(delivery.payload)
                return True
            handler = _handler_name(subscriber_cls)
            return inbox.run_once(delivery.key, handler, lambda: subscriber_cls()(delivery.payload))
        except Exception as exc:
            _handle_error(subscriber_cls, exc, delivery)
            raise
        finally:
            g.pop("message_in_context", None)


def _context_message(delivery: Delivery) -> Message:
    """The message Protean's server puts in ``g`` for a broker message."""
    return Message(
        data=delivery.payload,
        metadata=Metadata(
            headers=MessageHeaders(id=broker_source_id(delivery.payload) or delivery.id, stream=delivery.stream),
            domain=DomainMeta(kind="BROKER_MESSAGE", correlation_id=broker_correlation_id(delivery.payload)),
        ),
    )


def _handler_name(subscriber_cls: Any) -> str:
    from protean.utils import fqn

    return str(fqn(subscriber_cls))


def _handle_error(subscriber_cls: Any, exc: Exception, delivery: Delivery) -> None:
    try:
        subscriber_cls.handle_error(exc, delivery.payload)
    except Exception:  # as Protean does: a failing error hook must not mask the error
        logger.exception("%s.handle_error raised on %s", subscriber_cls.__name__, delivery.key)
