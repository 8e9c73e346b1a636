"""One named Celery task per handler, plus the relay tasks.

The task body decodes the payload, runs the handler (``handle.run_handler``),
and decides what a failure means, in one table:

============================  ==============================================
failure                       what happens
============================  ==============================================
payload is not a Protean      dead-lettered at once, rejected without
message / checksum mismatch   requeue (poison: a retry cannot fix it)
command type with no handler, dead-lettered, rejected without requeue
or data Protean cannot
rebuild (DeserializationError)
``ExpectedVersionError``      retried in-process (``version_retries``), then
                              as any handler error
any other handler error       Celery retry with exponential backoff and
                              jitter, up to the handler's ``max_retries``;
                              then dead-lettered and re-raised
============================  ==============================================

After a handler commits, the task nudges the relay so the messages it produced
leave at once instead of at the next beat tick.
"""

from __future__ import annotations

import json
import logging
import random
from typing import TYPE_CHECKING, Any

from celery.exceptions import Reject
from protean.exceptions import DeserializationError

from protean_celery.envelope import decode, describe
from protean_celery.errors import DecodeError, UnknownHandlerError
from protean_celery.registry import HandlerKind
from protean_celery.tasks.handle import Outcome, run_handler
from protean_celery.topology import Route

if TYPE_CHECKING:
    from protean_celery.app import Runtime

__all__ = ["register_tasks", "MAX_RETRY_DELAY"]

logger = logging.getLogger("protean_celery.tasks")

#: Longest wait between two retries of a handler task, in seconds.
MAX_RETRY_DELAY = 300.0


def register_tasks(celery: Any, runtime: Runtime) -> None:
    """Register the handler tasks and the relay-queue tasks (relays, maintenance) of ``runtime`` on ``celery``."""
    for route in runtime.topology.routes:
        _register_handler(celery, runtime, route)
    for what, name in runtime.topology.relay_tasks.items():
        if what == "maintenance":
            _register_maintenance(celery, runtime, name)
        else:
            _register_relay(celery, runtime, name, what)


def _register_handler(celery: Any, runtime: Runtime, route: Route) -> None:
    def body(task: Any, payload: Any) -> str:
        return execute(task, runtime, route, payload)

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
            providers=[provider] if provider else None, events=what == "outbox", commands=what == "commands"
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
    except Exception:  # the store is down: say so loudly, with the task, rather than lose it quietly
        logger.exception("%s: could not dead-letter a message (%s); payload: %.500r", route.task_name, error, payload)
        raise
    logger.warning("%s: message dead-lettered as %s", route.task_name, entry)


def _serial_key(route: Route, message: Any) -> str | None:
    if route.spec.kind not in (HandlerKind.PROJECTOR, HandlerKind.PROCESS_MANAGER):
        return None
    correlation = getattr(message.metadata.domain, "correlation_id", None)
    return f"{route.spec.path}|{correlation}" if correlation else None


def execute(task: Any, runtime: Runtime, route: Route, payload: Any) -> str:
    """The body of every handler task (see the module docstring for the failure table)."""
    request_id = getattr(task.request, "id", None)
    try:
        message = decode(payload)
    except DecodeError as exc:
        logger.error("%s: task %s rejected, not a Protean message: %s", route.task_name, request_id, exc)
        _park(runtime, route, payload, exc)
        raise Reject(str(exc), requeue=False) from exc
    options = runtime.settings.for_handler(route.spec.name)
    try:
        with runtime.serial.hold(_serial_key(route, message)):
            outcome = run_handler(
                runtime.domain, route.spec, message, version_retries=options.version_retries, inbox=runtime.inbox
            )
    except (UnknownHandlerError, DeserializationError) as exc:
        # No retry can fix a type nobody handles or data Protean cannot rebuild.
        logger.error("%s: task %s rejected: %s", route.task_name, request_id, exc)
        _park(runtime, route, payload, exc)
        raise Reject(str(exc), requeue=False) from exc
    except Exception as exc:
        retries = int(getattr(task.request, "retries", 0) or 0)
        if retries >= options.max_retries:
            logger.error(
                "%s: %s failed after %d attempts, dead-lettered: %r", route.task_name, describe(message),
                retries + 1, exc,
            )
            _park(runtime, route, payload, exc, attempts=retries + 1)
            raise
        delay = min(options.retry_delay_seconds * 2**retries, MAX_RETRY_DELAY) * (0.75 + random.random() / 2)
        logger.warning(
            "%s: %s failed (attempt %d), retrying in %.2fs: %r",
            route.task_name, describe(message), retries + 1, delay, exc,
        )
        raise task.retry(exc=_portable(exc), countdown=delay, max_retries=options.max_retries) from exc
    if outcome is Outcome.HANDLED:
        runtime.nudge()
    return outcome.value
