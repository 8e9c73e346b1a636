"""The errors protean-celery raises, in one tree.

::

    ProteanCeleryError(Exception)                   root; pickles with its message
    ├── ConfigurationError(..., protean ConfigurationError, ValueError)
    │   │                                           bad [custom.celery], overrides, broker
    │   │                                           or database settings
    │   ├── TopologyError                           name collision, illegal routing key,
    │   │                                           handler without a stream category
    │   └── SubscriptionSettingError                a per-handler Protean setting with no
    │                                               meaning under Celery
    ├── MessageError                                a message we cannot handle
    │   ├── DecodeError(MessageError, ValueError)   payload is not a Protean message (poison)
    │   │   └── PayloadTooLarge                     payload above [custom.celery] max_payload_bytes
    │   ├── ForeignMessageError(MessageError, ValueError)
    │   │                                           a message of another domain on this app's queue
    │   ├── UnknownHandlerError(MessageError, KeyError)
    │   │                                           a task or message type this worker
    │   │                                           does not know
    │   ├── SequentialKeyMissing(MessageError, ValueError)
    │   │                                           a sequential_by handler's message without its key
    │   └── OutOfTurn                               an ordered handler's message ahead of its turn
    │       └── OrderingGap                         ... that waited too long: dead-lettered
    ├── RelayError                                  publishing to the broker failed
    │   ├── MessageLost                             a relayed message vanished, republished in vain
    │   └── EagerCascadeLimit                       eager mode: a cascade ran too many tasks
    ├── DeadLetterError                             DLQ tooling: unknown id, replay target missing
    ├── OutboxError                                 outbox tooling: a row that cannot be requeued
    │   └── OutboxRowNotFound(OutboxError, KeyError)
    │                                               no outbox row has this id
    ├── DeadlineError(..., ValueError)              a deadline that cannot be scheduled: no time,
    │   │                                           a naive time, an unregistered message
    │   └── DeadlineNotFound(DeadlineError, KeyError)
    │                                               no pending deadline has this key
    ├── EventStoreError                             the SQL event store cannot serve a call
    │   └── EventStoreNotSetUp                      its table is missing: run ``protean db setup``
    └── ServerError                                 a test/embedded server cannot be started
        └── ServerBinaryNotFound                    its binary is not installed

Protean's own domain errors (``ValidationError``, ``ExpectedVersionError`` …) and
Celery's control-flow exceptions (``Retry``, ``Reject``) pass through unwrapped.
Every message says what to fix.
"""

from __future__ import annotations

from typing import Any

from protean.exceptions import ConfigurationError as _ProteanConfigurationError

__all__ = [
    "ProteanCeleryError",
    "ConfigurationError",
    "TopologyError",
    "SubscriptionSettingError",
    "MessageError",
    "DecodeError",
    "PayloadTooLarge",
    "ForeignMessageError",
    "UnknownHandlerError",
    "SequentialKeyMissing",
    "OutOfTurn",
    "OrderingGap",
    "RelayError",
    "MessageLost",
    "EagerCascadeLimit",
    "DeadLetterError",
    "OutboxError",
    "OutboxRowNotFound",
    "DeadlineError",
    "DeadlineNotFound",
    "EventStoreError",
    "EventStoreNotSetUp",
    "ServerError",
    "ServerBinaryNotFound",
]


class ProteanCeleryError(Exception):
    """Root of every error protean-celery raises."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefork pipes and result backends pickle exceptions: keep message and fields.
        return (_rebuild, (type(self), self.message, self.fields))


def _rebuild(cls: type[ProteanCeleryError], message: str, fields: dict[str, Any]) -> ProteanCeleryError:
    return cls(message, **fields)


class ConfigurationError(ProteanCeleryError, _ProteanConfigurationError, ValueError):
    """Bad configuration: ``[custom.celery]``, keyword overrides, broker or database."""

    def __init__(self, message: str, **fields: Any) -> None:
        ProteanCeleryError.__init__(self, message, **fields)


class TopologyError(ConfigurationError):
    """The domain's handlers cannot be mapped onto tasks, queues and routing keys."""


class SubscriptionSettingError(ConfigurationError):
    """A per-handler subscription setting (``[server.subscriptions.<Handler>]``, ``Meta``) with no meaning here."""


class MessageError(ProteanCeleryError):
    """A message that cannot be handled. It is never dropped silently."""


class DecodeError(MessageError, ValueError):
    """The task payload is not a valid Protean message (or its checksum is wrong)."""


class PayloadTooLarge(DecodeError):
    """The encoded payload is above ``[custom.celery] max_payload_bytes``."""


class ForeignMessageError(MessageError, ValueError):
    """A message of another domain reached this domain's queue (a routing or naming mistake)."""


class UnknownHandlerError(MessageError, KeyError):
    """A task name or message type this worker has no handler for."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class SequentialKeyMissing(MessageError, ValueError):
    """A message for a ``sequential_by`` handler lacks the field that keys it: it cannot be ordered, so it is parked."""


class OutOfTurn(MessageError):
    """A message of an ordered handler arrived before a predecessor in its stream was handled: it is deferred.

    ``fields`` name the ``lane`` (handler and stream), the message's ``position`` and the
    ``missing`` position it waits for.
    """


class OrderingGap(OutOfTurn):
    """A message of an ordered handler waited ``ordering_retries`` times for its predecessor: it is dead-lettered."""


class RelayError(ProteanCeleryError):
    """Publishing outbox rows or commands to the broker failed."""


class MessageLost(RelayError):
    """A relayed message was never handled and no copy was left; the sweep's republications were lost too."""


class EagerCascadeLimit(RelayError):
    """Eager mode: one cascade applied its maximum number of tasks; the rest stay queued (see ``eager.py``)."""


class DeadLetterError(ProteanCeleryError):
    """A dead-letter operation cannot be done: unknown entry, or its task no longer exists."""


class ParkingFailed(DeadLetterError):
    """The dead-letter store could not take a message (it is down): the message is retried, not dropped."""


class OutboxError(ProteanCeleryError):
    """An outbox operation cannot be done: the row is not failed, stuck or abandoned."""


class OutboxRowNotFound(OutboxError, KeyError):
    """No outbox row of any provider has this id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class DeadlineError(ProteanCeleryError, ValueError):
    """A deadline that cannot be scheduled or fired as asked (see :mod:`protean_celery.deadlines`)."""


class DeadlineNotFound(DeadlineError, KeyError):
    """No pending deadline has this key (it fired, was cancelled, or never existed)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class EventStoreError(ProteanCeleryError):
    """The SQL event store cannot serve a call (bad URI, unreachable database)."""


class EventStoreNotSetUp(EventStoreError):
    """The event store table does not exist yet: run ``celery -A app protean db setup``."""


class ServerError(ProteanCeleryError):
    """A Redis or PostgreSQL server for tests or the embedded default failed to start."""


class ServerBinaryNotFound(ServerError):
    """The server binary is not installed; the message says how to install it."""
