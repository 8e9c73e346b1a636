"""One named Celery task per handler, plus the relay tasks.

The task body decodes the payload, runs the handler (``handle.run_handler``),
and decides what a failure means, in one table (the retry pace and budgets are
in ``tasks/retry.py``):

============================  ==============================================
failure                       what happens
============================  ==============================================
payload above                 dead-lettered at once (``PayloadTooLarge``),
``max_payload_bytes``         rejected without requeue (poison: a retry
                              cannot fix it)
payload is not a Protean      dead-lettered at once (``DecodeError``),
message / checksum mismatch   rejected without requeue
message of another domain     dead-lettered at once (``ForeignMessageError``,
                              naming both domains), rejected without requeue
type the domain does not      dead-lettered at once (``UnknownHandlerError``),
register or upcast, command   rejected without requeue
type with no handler, or
data Protean cannot rebuild
(DeserializationError)
ordered handler's message    tried again in-process for up to 100 ms, then
before its turn               deferred (short countdown, not a handler
                              retry) up to ``ordering_retries`` times, then
                              dead-lettered (``OrderingGap``)
command whose deadline        acked as expired (inbox marker), not retried
passes before its next retry
message without the           dead-lettered at once
``sequential_by`` key of its  (``SequentialKeyMissing``), rejected without
handler                       requeue
``ExpectedVersionError``      retried in-process (``version_retries``) with
                              fresh state, then by Celery, quickly
                              (``transient_retries``)
transient infrastructure      Celery retry, exponential backoff from 1 s
error (connection, timeout,   capped at 300 s, up to ``transient_retries``
database operational error)
any other handler error       Celery retry, exponential backoff from the
                              handler's ``retry_delay_seconds``, up to its
                              ``max_retries`` (Protean's ``ConfigResolver``)
retries exhausted             dead-lettered with error, traceback and
                              attempts, then re-raised (task FAILURE)
============================  ==============================================

Messages that never reach a task body (a body that is not valid JSON, an
unknown task name, content Celery refuses) are dead-lettered by the worker's
consumer instead: see :mod:`protean_celery.worker.consumer`.

``handle_error`` is called on every failed attempt, as Protean calls it. Every
delay is jittered ±25%. After a handler commits, the task goes on with the
messages it produced for handlers this worker consumes, then hands the rest to
the relay at once (:mod:`protean_celery.continuation`), not at the next beat tick.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, NoReturn

from celery.exceptions import Reject
from protean.exceptions import DeserializationError

from protean_celery.envelope import decode, describe, message_key, metadata_of
from protean_celery.errors import (
    DecodeError,
    ForeignMessageError,
    MessageError,
    OutOfTurn,
    ParkingFailed,
    PayloadTooLarge,
    UnknownHandlerError,
)
from protean_celery.intake import check_domain, check_size, check_type
from protean_celery.ordering import patiently
from protean_celery.protean_api import resolve_type
from protean_celery.sequential import sequential_key
from protean_celery.tasks.deferral import defer
from protean_celery.tasks.handle import Outcome, run_handler, serial_key
from protean_celery.tasks.retry import MAX_RETRY_DELAY, classify, deadline_passes
from protean_celery.topology import Route
from protean_celery.traces.events import dead_lettered

if TYPE_CHECKING:
    from protean_celery.runtime import Runtime

__all__ = ["register_tasks", "execute", "MAX_RETRY_DELAY"]

logger = logging.getLogger("protean_celery.tasks")

def register_tasks(celery: Any, runtime: Runtime) -> None:
    """Register the handler tasks and the relay-queue tasks (relays, maintenance) of ``runtime`` on ``celery``."""
    for route in runtime.topology.routes:
        _register_handler(celery, runtime, route)
    for what, name in runtime.topology.relay_tasks.items():
        if what == "maintenance":
            _register_maintenance(celery, runtime, name)
        elif what == "sweep":
            _register_sweep(celery, runtime, name)
        elif what == "deadlines":
            from protean_celery.deadlines.firing import register_deadline_task

            register_deadline_task(celery, runtime, name)
        else:
            _register_relay(celery, runtime, name, what)


def _register_handler(celery: Any, runtime: Runtime, route: Route) -> None:
    def body(task: Any, payload: Any) -> str:
        try:
            return execute(task, runtime, route, payload)
        except ParkingFailed as exc:
            # Nothing is lost: the message waits in the broker until the store is back.
            retries = int(getattr(task.request, "retries", 0) or 0)
            delay = min(2.0**retries, MAX_RETRY_DELAY)
            raise task.retry(exc=_portable(exc), countdown=delay, max_retries=None) from exc

    body.__name__ = route.spec.name
    body.__doc__ = f"Protean {route.spec.kind.value} {route.spec.path}."
    celery.task(
        name=route.task_name,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        typing=False,
        shared=False,
    )(body)


def _register_relay(celery: Any, runtime: Runtime, name: str, what: str) -> None:
    def relay(provider: str | None = None) -> dict[str, int]:
        report = runtime.relay.run(
            providers=[provider] if provider else None, events=what == "outbox", commands=what == "commands",
            grace=True,
        )
        return {"events": report.events, "commands": report.commands, "tasks": report.tasks, "failed": report.failed}

    relay.__name__ = f"relay_{what}"
    celery.task(name=name, ignore_result=True, acks_late=False, shared=False)(relay)


def _register_maintenance(celery: Any, runtime: Runtime, name: str) -> None:
    from protean_celery.maintenance import maintain

    def maintenance() -> dict[str, int]:
        return maintain(runtime)

    maintenance.__doc__ = "Prune old inbox markers, dead letters and outbox rows (protean_celery.maintenance)."
    celery.task(name=name, ignore_result=True, acks_late=False, shared=False)(maintenance)


def _register_sweep(celery: Any, runtime: Runtime, name: str) -> None:
    def sweep() -> dict[str, int]:
        return runtime.sweep.run().as_dict()

    sweep.__doc__ = "Republish relayed messages no handler got (protean_celery.redelivery.sweep)."
    celery.task(name=name, ignore_result=True, acks_late=False, shared=False)(sweep)


def _portable(exc: Exception) -> Exception:
    """``exc`` if Celery can serialise it as JSON, else a RuntimeError carrying its repr."""
    try:
        json.dumps(exc.args)
        return exc
    except (TypeError, ValueError):
        return RuntimeError(repr(exc)[:1000])


def _park(runtime: Runtime, route: Route, payload: Any, error: BaseException, attempts: int = 1) -> None:
    try:
        entry = runtime.dead_letters.park(route.task_name, payload, error, attempts=attempts)
    except Exception as exc:  # the store is down: keep the message in the broker until it is back
        logger.exception(
            "%s: could not dead-letter a message (%s), it will be retried; payload: %.500r",
            route.task_name, error, payload,
        )
        raise ParkingFailed(f"The dead-letter store is unavailable ({exc!r}) while parking: {error}") from exc
    logger.warning("%s: message dead-lettered as %s", route.task_name, entry)
    dead_lettered(runtime.domain, route.task_name, payload, error, attempts, entry, route)


def _admit(runtime: Runtime, route: Route, payload: Any) -> Any:
    """The decoded message, once it passed every check of :mod:`protean_celery.intake`."""
    check_size(payload, runtime.settings.max_payload_bytes, route.task_name)
    message = decode(payload, require_checksum=not runtime.settings.accept_unsigned)
    domain = runtime.domain
    check_domain(message, route.spec, domain.normalized_name, domain.camel_case_name, runtime.topology.known_types)
    check_type(message, route.spec, lambda name: resolve_type(domain, name))
    sequential_key(route.spec, message)  # a sequential_by handler's message without its key: parked at once
    return message


#: How the log line names each rejection.
_WHY: tuple[tuple[type[MessageError], str], ...] = (
    (PayloadTooLarge, "payload too large"),
    (DecodeError, "not a Protean message"),
    (ForeignMessageError, "message of another domain"),
    (UnknownHandlerError, "unknown message type"),
)


def _reject(runtime: Runtime, route: Route, payload: Any, request_id: Any, exc: MessageError) -> NoReturn:
    why = next((text for cls, text in _WHY if isinstance(exc, cls)), "cannot be handled")
    logger.error("%s: task %s rejected, %s: %s", route.task_name, request_id, why, exc)
    _park(runtime, route, payload, exc)
    raise Reject(str(exc), requeue=False) from exc


def execute(task: Any, runtime: Runtime, route: Route, payload: Any) -> str:
    """The body of every handler task (see the module docstring for the failure table)."""
    request_id = getattr(task.request, "id", None)
    try:
        message = _admit(runtime, route, payload)
    except MessageError as exc:
        _reject(runtime, route, payload, request_id, exc)
    policy = runtime.retry_policies.for_message(route.spec, str(metadata_of(message).headers.type))
    try:
        with runtime.commits.deferred():
            outcome = patiently(lambda: run_handler(  # patiently: an ordered handler's message out of turn
                runtime.domain, route.spec, message, version_retries=policy.version_retries, inbox=runtime.inbox,
                lock=runtime.ordering.lock(route, message, serial_key(route, message)),
                transitions=runtime.transitions, turn=runtime.ordering.turn(route, message),
            ))
    except OutOfTurn as exc:  # an ordered handler's message before its turn: tasks/deferral.py
        budget = runtime.settings.ordering_retries
        return defer(task, exc, budget, lambda error, attempts: _park(runtime, route, payload, error, attempts))
    except (UnknownHandlerError, DeserializationError) as exc:
        # No retry can fix a type nobody handles or data Protean cannot rebuild.
        logger.error("%s: task %s rejected: %s", route.task_name, request_id, exc)
        _park(runtime, route, payload, exc)
        raise Reject(str(exc), requeue=False) from exc
    except Exception as exc:
        retries = int(getattr(task.request, "retries", 0) or 0)
        failure = classify(exc)
        budget = policy.budget(failure)
        if retries >= budget:
            logger.error(
                "%s: %s failed after %d attempts (%s error), dead-lettered: %r", route.task_name, describe(message),
                retries + 1, failure.value, exc,
            )
            _park(runtime, route, payload, exc, attempts=retries + 1)
            raise
        delay = policy.delay(failure, retries)
        if deadline_passes(message, delay, runtime.domain.clock.now()):  # acked as expired, as run_handler does
            logger.warning("%s: %s failed and expires before a retry: %r", route.task_name, describe(message), exc)
            runtime.inbox.mark(message_key(message), route.spec.path)
            return Outcome.EXPIRED.value
        logger.warning(
            "%s: %s failed (attempt %d, %s error), retrying in %.2fs: %r",
            route.task_name, describe(message), retries + 1, failure.value, delay, exc,
        )
        raise task.retry(exc=_portable(exc), countdown=delay, max_retries=budget) from exc
    if outcome is Outcome.HANDLED:
        runtime.handled()
    return outcome.value
