"""Process-manager safety Protean leaves to the runtime.

Before a process manager handles an event:

* **Redelivery**: if a transition in the instance's stream was caused by this very
  event (its ``causation_id`` is the event's id), the event was handled already,
  even when the inbox marker was lost in a crash between the transition's append
  and the marker's commit. It is acknowledged as a duplicate: no second command.
* **Early events**: a non-start event whose instance does not exist yet is not
  dropped (Protean skips it with a debug log); it raises :class:`EarlyEventError`,
  which the task retries with backoff and, once retries are exhausted, dead-letters
  with that reason.

When the transitions commit in the inbox marker's transaction (the SQL event store
in the default database), the marker alone recognises a redelivery, and an early
event is recognised after the handler ran, from the transition it did not make
(:func:`require_transition`): no stream read in the common case.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from protean.utils.eventing import Message

from protean_celery.envelope import metadata_of
from protean_celery.errors import MessageError
from protean_celery.protean_api import correlation_value, is_start, process_manager_methods

__all__ = ["EarlyEventError", "already_handled", "require_transition", "transition_category"]


class EarlyEventError(MessageError):
    """A non-start event reached a process manager before its instance was started."""


def already_handled(pm_cls: Any, message: Message) -> bool:
    """Whether ``pm_cls`` already made a transition caused by ``message``.

    Must run inside a domain context.

    Raises:
        EarlyEventError: a non-start event for an instance that does not exist yet.
    """
    headers = metadata_of(message).headers
    for method, correlation, stream, store in _instances(pm_cls, message):
        transitions = store.read(stream, no_of_messages=1_000_000)
        if any(_caused_by(t, headers.id) for t in transitions):
            return True
        if not transitions and not is_start(method):
            raise _early(pm_cls, message, correlation)
    return False


def transition_category(pm_cls: Any) -> str:
    """The stream category of ``pm_cls``'s transitions."""
    return str(pm_cls.meta_.stream_category)


def require_transition(pm_cls: Any, message: Message) -> None:
    """Called when handling ``message`` made no transition: raise if that is because the instance does not exist.

    A complete instance (or an event the process manager does not handle) makes
    no transition either; that is fine. Must run inside a domain context.

    Raises:
        EarlyEventError: a non-start event for an instance that does not exist yet.
    """
    for method, correlation, stream, store in _instances(pm_cls, message):
        if not is_start(method) and not store.read(stream, no_of_messages=1):
            raise _early(pm_cls, message, correlation)


def _instances(pm_cls: Any, message: Message) -> Iterator[tuple[Any, Any, str, Any]]:
    """For each handler method of ``pm_cls`` taking ``message``: the method, its correlation, stream and the store."""
    from protean.utils.globals import current_domain

    event = message.to_domain_object()
    store: Any = current_domain.event_store.store
    for method in process_manager_methods(pm_cls, str(metadata_of(message).headers.type)):
        correlation = correlation_value(event, method)
        yield method, correlation, f"{transition_category(pm_cls)}-{correlation}", store


def _early(pm_cls: Any, message: Message, correlation: Any) -> EarlyEventError:
    headers = metadata_of(message).headers
    return EarlyEventError(
        f"{headers.type} {headers.id} reached {pm_cls.__name__} before instance {correlation!r} was "
        "started; it is retried with backoff, then dead-lettered.",
        correlation=str(correlation),
    )


def _caused_by(transition: Message, message_id: Any) -> bool:
    domain = transition.metadata.domain if transition.metadata else None
    return domain is not None and domain.causation_id == message_id
