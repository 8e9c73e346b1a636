"""Emitting Protean's trace events: the emitter's check, one event, dead letters and outbox rows (I/O).

See :mod:`protean_celery.traces` for which event is emitted when. Every function
here returns at once when :func:`listening` says no event would go anywhere, and
none raises: a tracing error is logged once and the work goes on.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protean.utils.eventing import MessageHeaders, TraceParent
from protean.utils.telemetry import describe_exception

from protean_celery.protean_api import trace_listening

if TYPE_CHECKING:
    from protean_celery.topology import Route

__all__ = [
    "MessageFacts", "dead_lettered", "emit", "listening", "relayed", "resolved_handler", "warn_once", "worker_id",
]

logger = logging.getLogger(__name__)

_warned: set[str] = set()


def listening(domain: Any) -> bool:
    """Whether a trace event would go anywhere (Protean's emitter's own check; cheap, cached by it)."""
    try:
        return trace_listening(domain.trace_emitter)
    except Exception as exc:  # tracing never breaks the work it describes
        warn_once("listening", exc)
        return False


def emit(domain: Any, event: str, facts: MessageFacts, **fields: Any) -> None:
    """Emit one trace ``event`` about the message ``facts`` describes; never raises."""
    try:
        domain.trace_emitter.emit(
            event=event, stream=facts.stream, message_id=facts.message_id, message_type=facts.message_type,
            correlation_id=facts.correlation_id, causation_id=facts.causation_id, **fields,
        )
    except Exception as exc:  # tracing never breaks the work it describes
        warn_once(event, exc)


def warn_once(what: str, exc: BaseException) -> None:
    """Log that trace ``what`` was not emitted: a warning the first time, debug after."""
    if what in _warned:
        logger.debug("trace %s not emitted: %r", what, exc)
        return
    _warned.add(what)
    logger.warning("protean-celery: trace %s not emitted (%r); the work goes on, later failures log at debug", what,
                   exc)


@dataclass(frozen=True)
class MessageFacts:
    """What a trace event says about a message: where it came from and what it is.

    Attributes:
        stream: its stream category (``orders::order``).
        message_id: Protean's ``headers.id``.
        message_type: Protean's ``headers.type``.
        correlation_id: its correlation chain.
        causation_id: the message that caused it.
        timing: its ``traceparent`` and ``deadline`` headers as sent (read only when needed:
            building Protean's headers costs more than the rest of a trace).
    """

    stream: str
    message_id: str
    message_type: str
    correlation_id: str | None = None
    causation_id: str | None = None
    timing: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of_payload(cls, payload: Any) -> MessageFacts | None:
        """The facts of a handler task's payload (``Message.to_dict()``); None when it is not one."""
        if not isinstance(payload, Mapping) or not isinstance(payload.get("metadata"), Mapping):
            return None
        metadata = payload["metadata"]
        headers = metadata.get("headers") if isinstance(metadata.get("headers"), Mapping) else {}
        domain = metadata.get("domain") if isinstance(metadata.get("domain"), Mapping) else {}
        timing = {key: headers[key] for key in ("traceparent", "deadline") if headers.get(key)}
        # A command's metadata names no category: its stream (``shop::order:command-o1``) does.
        stream = domain.get("stream_category") or str(headers.get("stream") or "").partition("-")[0]
        return cls(
            stream=str(stream or "unknown"),
            message_id=str(headers.get("id") or "unknown"),
            message_type=str(headers.get("type") or "unknown"),
            correlation_id=domain.get("correlation_id"),
            causation_id=domain.get("causation_id"),
            timing=timing,
        )

    def traceparent(self) -> TraceParent | None:
        """The message's ``traceparent`` (None when it has none, or it cannot be read)."""
        found = self.timing.get("traceparent")
        try:
            return TraceParent(**found) if isinstance(found, Mapping) else TraceParent.build(found) if found else None
        except Exception:  # a malformed header starts no trace; the handler task decides about the message
            return None

    def deadline(self) -> MessageHeaders | None:
        """Protean's headers holding only the message's deadline (None when it has none, or it cannot be read)."""
        found = self.timing.get("deadline")
        try:
            return MessageHeaders(deadline=found) if found else None
        except Exception:  # a malformed deadline: the handler task decides about the message
            return None

    @classmethod
    def of_row(cls, row: Any) -> MessageFacts:
        """The facts of Protean's outbox row (its entity)."""
        meta = getattr(row, "metadata_", None)
        stream = getattr(getattr(meta, "domain", None), "stream_category", None)
        return cls(
            stream=str(stream or "unknown"), message_id=str(row.message_id), message_type=str(row.type or "unknown"),
            correlation_id=row.correlation_id, causation_id=row.causation_id,
        )


def _never_raises(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Run a hook so that no error of its own reaches the work it describes (logged once)."""

    def wrap(hook: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(hook)
        def quiet(*args: Any, **kwargs: Any) -> None:
            try:
                hook(*args, **kwargs)
            except Exception as exc:  # tracing never breaks the work it describes
                warn_once(what, exc)

        return quiet

    return wrap


@_never_raises("message.dlq")
def dead_lettered(
    domain: Any, task: str, payload: Any, error: BaseException, attempts: int, entry: str, route: Route | None = None
) -> None:
    """``message.dlq``: ``payload`` of ``task`` was parked as dead letter ``entry`` after ``attempts`` tries.

    Args:
        domain: the domain the task belongs to.
        task: the task the message was for.
        payload: the message as the task received it.
        error: why it was parked.
        attempts: how many times it was tried.
        entry: the dead letter's id (``protean dlq show``).
        route: the task's route, when it is a handler task (names the handler as the other events do).
    """
    if not listening(domain):
        return
    facts = MessageFacts.of_payload(payload) or MessageFacts("unknown", "unknown", "unknown")
    handler = resolved_handler(route, facts.message_type) if route is not None else task
    emit(
        domain, "message.dlq", facts, status="error", handler=handler,
        error=describe_exception(error), metadata={"dead_letter": entry, "retry_count": attempts, "task": task},
        worker_id=worker_id(),
    )


@_never_raises("outbox.published")
def relayed(
    domain: Any, rows: Iterable[Any], outcomes: Mapping[Any, BaseException | None], worker_id: str,
    external: bool = False,
) -> None:
    """``outbox.published`` (or ``outbox.failed``) for each outbox row, by its id in ``outcomes``.

    Args:
        domain: the domain whose outbox the rows are.
        rows: Protean's outbox rows (entities) just relayed.
        outcomes: row id → None when published, else the error.
        worker_id: the relay that published them.
        external: the rows went to an external broker (``outbox.external_*``, as Protean names them).
    """
    if not listening(domain):
        return
    prefix = "outbox.external_" if external else "outbox."
    for row in rows:
        if row.id not in outcomes:
            continue
        error = outcomes[row.id]
        facts = MessageFacts.of_row(row)
        if error is None:
            emit(domain, prefix + "published", facts, payload=row.data, worker_id=worker_id)
        else:
            emit(domain, prefix + "failed", facts, status="error", error=str(error),
                 metadata={"retry_count": getattr(row, "retry_count", 0)}, worker_id=worker_id)


def resolved_handler(route: Route, message_type: str) -> str:
    """The handler class name, as Protean's engine names it (a dispatcher's command handler)."""
    cls = route.spec.handler_for(message_type)
    return str(getattr(cls, "__name__", None) or route.spec.name)


def worker_id(hostname: str | None = None) -> str:
    """Who emitted an event: the worker's node name (else the host) and this process's id."""
    return f"{hostname or socket.gethostname()}-{os.getpid()}"
