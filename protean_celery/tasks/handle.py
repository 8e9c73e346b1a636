"""Run one Protean message through one handler, synchronously.

Protean's ``Engine.handle_message`` is an Engine-bound coroutine that swallows
errors; this is the small sync equivalent a Celery task needs, and it re-raises
so Celery can retry:

decode (done by the caller) → ``domain_context(**metadata.extensions)`` →
``g.message_in_context`` → skip expired commands → ``processing_priority`` →
``Handler._handle`` (Unit of Work, version retry, process-manager correlation) →
``handle_error`` on failure → re-raise.

Process managers bypass Protean's ``@handle`` wrapper and so its retry on
``ExpectedVersionError``; :func:`run_handler` retries that error for every
handler kind, with fresh state on each attempt.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from protean.exceptions import ExpectedVersionError
from protean.utils.eventing import Message
from protean.utils.globals import g
from protean.utils.processing import processing_priority

from protean_celery.envelope import describe, message_key, metadata_of
from protean_celery.errors import OutOfTurn, UnknownHandlerError
from protean_celery.inbox import Inbox
from protean_celery.ordering import Turn
from protean_celery.protean_api import handle_message
from protean_celery.registry import HandlerKind, HandlerSpec
from protean_celery.sequential import sequential_key
from protean_celery.subscriptions import from_origin
from protean_celery.tasks.process_manager import already_handled, require_transition, transition_category
from protean_celery.topology import Route

__all__ = ["Outcome", "run_handler", "serial_key"]

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    """How a message ended in a handler task."""

    HANDLED = "handled"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"


def run_handler(
    domain: Any,
    spec: HandlerSpec,
    message: Message,
    *,
    version_retries: int = 5,
    inbox: Inbox | None = None,
    lock: str | None = None,
    transitions: Callable[[str], int] | None = None,
    turn: Turn | None = None,
) -> Outcome:
    """Handle ``message`` with the handler ``spec`` names, inside a fresh domain context.

    Args:
        domain: the initialised Protean domain.
        spec: the handler (or command dispatcher) to run.
        message: the decoded message.
        version_retries: extra attempts on ``ExpectedVersionError``.
        inbox: records the message as handled in the handler's Unit of Work.
        lock: serialise handlers holding the same key for the Unit of Work (see ``Inbox.run_once``).
        transitions: for a process manager whose transitions commit with the inbox
            marker: how many appends to a category this thread made so far. The
            marker then recognises redeliveries and no stream is read up front.
        turn: for an ordered handler, the message's place in its lane, taken in
            the Unit of Work after the marker (:mod:`protean_celery.ordering`).

    Returns:
        ``HANDLED``; ``EXPIRED`` for a command past its deadline (acked, never
        retried); ``DUPLICATE`` when the inbox says this handler already handled it;
        ``SKIPPED`` for a message not from the handler's ``origin_stream`` (marked handled).

    Raises:
        UnknownHandlerError: a command type this dispatcher has no handler for.
        OutOfTurn: an ordered handler's message whose predecessor is not handled yet.
        Exception: whatever the handler raised, after ``handle_error`` was called.
    """
    metadata = metadata_of(message)
    message_type = str(metadata.headers.type)
    handler_cls = spec.handler_for(message_type)
    if handler_cls is None:
        raise UnknownHandlerError(
            f"{spec.path} has no handler for {describe(message)}: register a command handler for "
            f"{message_type} or stop sending it.",
            message_type=message_type,
            handler=spec.path,
        )
    extensions = dict(metadata.extensions or {})
    with domain.domain_context(**extensions):
        g.message_in_context = message
        try:
            # Both end without the handler's Unit of Work: the marker still records
            # that this handler is done with the message (the redelivery sweep reads it).
            if metadata.headers.is_expired():
                logger.info("%s: skipped expired command %s", spec.name, describe(message))
                _mark(inbox, message, spec.path)
                return Outcome.EXPIRED
            if not from_origin(domain, handler_cls, message):  # the handler's origin_stream (subscriptions.py)
                logger.info("%s: skipped %s, not from its origin_stream", spec.name, describe(message))
                _mark(inbox, message, spec.path)
                return Outcome.SKIPPED
            manager = spec.kind is HandlerKind.PROCESS_MANAGER
            if manager and transitions is None and already_handled(handler_cls, message):
                logger.info("%s: redelivered %s already made a transition", spec.name, describe(message))
                _mark(inbox, message, spec.path)
                return Outcome.DUPLICATE
            checked = _checked(handler_cls, message, transitions if manager else None)
            if turn is not None:
                checked = turn.guard(checked)
            priority = getattr(metadata.domain, "priority", 0) or 0
            with processing_priority(priority):
                handled = _invoke(checked, message, version_retries, inbox, spec.path, lock)
            if not handled:
                logger.info("%s: duplicate %s acknowledged without handling", spec.name, describe(message))
            return Outcome.HANDLED if handled else Outcome.DUPLICATE
        except Exception as exc:
            if not isinstance(exc, OutOfTurn):  # not a failure: it waits for its turn
                _handle_error(handler_cls, exc, message)
            raise
        finally:
            g.pop("message_in_context", None)


def _checked(handler_cls: Any, message: Message, transitions: Callable[[str], int] | None) -> Callable[[], None]:
    """``handler_cls._handle(message)``; for a process manager, it raises when a missing instance made no transition."""
    if transitions is None:
        return lambda: handle_message(handler_cls, message)
    category = transition_category(handler_cls)

    def handle() -> None:
        before = transitions(category)
        handle_message(handler_cls, message)
        if transitions(category) == before:
            require_transition(handler_cls, message)

    return handle


def _invoke(
    handle: Callable[[], None], message: Message, version_retries: int, inbox: Inbox | None, handler: str,
    lock: str | None,
) -> bool:
    for attempt in range(version_retries + 1):
        try:
            if inbox is None:
                handle()
                return True
            return inbox.run_once(message_key(message), handler, handle, lock=lock)
        except ExpectedVersionError:
            if attempt >= version_retries:
                raise
            # Another worker moved the stream on: reload and try again, spread out.
            time.sleep(min(0.01 * 2**attempt, 0.2) * (0.5 + random.random()))
    return True  # pragma: no cover - the loop returns or raises


def _mark(inbox: Inbox | None, message: Message, handler: str) -> None:
    if inbox is not None:
        inbox.mark(message_key(message), handler)


def _handle_error(handler_cls: Any, exc: Exception, message: Message) -> None:
    try:
        handler_cls.handle_error(exc, message)
    except Exception:  # as Protean does: a failing error hook must not mask the error
        logger.exception("%s.handle_error raised while handling %s", handler_cls.__name__, describe(message))


def serial_key(route: Route, message: Any) -> str | None:
    """Projectors and process managers handle one message per (handler, correlation) at a time.

    Two prefork children may handle two events of one order at once. A process
    manager catches that through its stream's expected version, but a projector's
    read-modify-write of one projection row would lose an update (projections
    carry no version): seen on PostgreSQL and SQLite in the saga runs. The inbox
    holds this key's lock for the handler's whole Unit of Work.
    """
    sequential = sequential_key(route.spec, message)  # Protean's sequential_by (see sequential.py)
    if sequential is not None:
        return sequential
    if route.spec.kind not in (HandlerKind.PROJECTOR, HandlerKind.PROCESS_MANAGER):
        return None
    correlation = getattr(message.metadata.domain, "correlation_id", None)
    return f"{route.spec.path}|{correlation}" if correlation else None
