"""One named Celery task per broker subscriber, plus the bridge task that feeds them.

A subscriber task's failure table, the handler tasks' own (``tasks/__init__.py``)
for what a subscriber can meet:

============================  ==============================================
failure                       what happens
============================  ==============================================
payload is not JSON, is       dead-lettered at once (``DecodeError``, the raw
empty, or is JSON but not an  entry kept), rejected without requeue
object
message above                 dead-lettered at once (``PayloadTooLarge``),
``max_payload_bytes``         rejected without requeue
transient infrastructure      Celery retry, exponential backoff from 1 s,
error (connection, timeout,   up to ``transient_retries``
database operational error)
anything the subscriber       Celery retry, exponential backoff from its
raised                        ``retry_delay_seconds``, up to its ``max_retries``
                              (``subscribers/policy.py``)
retries exhausted             dead-lettered with error, traceback and
                              attempts, then re-raised (task FAILURE)
the dead-letter store is      the message waits in the broker, retried until
down                          the store is back
============================  ==============================================

``handle_error`` is called on every failed attempt, as Protean calls it. A
message the inbox says was handled is acknowledged without running the
subscriber. After a subscriber commits, the relay is nudged, so the commands it
issued leave at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NoReturn

from celery.exceptions import Reject

from protean_celery.errors import MessageError, ParkingFailed
from protean_celery.intake import check_size
from protean_celery.subscribers.bridge import Bridge
from protean_celery.subscribers.delivery import describe_delivery, unwrap
from protean_celery.subscribers.routes import SubscriberRoute
from protean_celery.subscribers.run import run_subscriber
from protean_celery.tasks import MAX_RETRY_DELAY, _portable
from protean_celery.tasks.retry import RetryPolicy, classify

if TYPE_CHECKING:
    from protean_celery.runtime import Runtime

__all__ = ["register_subscriber_tasks", "deliver"]

logger = logging.getLogger("protean_celery.subscribers")


def register_subscriber_tasks(
    celery: Any, runtime: Runtime, bridge: Bridge, policies: dict[str, RetryPolicy], bridge_task: str
) -> None:
    """Register each subscriber's task and the bridge task on ``celery``.

    Args:
        celery: the ``ProteanCelery`` app.
        runtime: its runtime (inbox, dead letters, commits).
        bridge: the bridge of the app's subscribers.
        policies: each subscriber's retry policy, by class name.
        bridge_task: the bridge task's name (on the relay queue).
    """
    for route in bridge.routes.values():
        _register_subscriber(celery, runtime, route, policies[route.name])

    def bridge_subscriber(subscriber: str) -> dict[str, int]:
        report = bridge.run(subscriber)
        return {"reclaimed": report.reclaimed, "published": report.published}

    bridge_subscriber.__doc__ = "Move a broker subscriber's stream into its queue (protean_celery.subscribers.bridge)."
    celery.task(name=bridge_task, ignore_result=True, acks_late=False, shared=False)(bridge_subscriber)


def _register_subscriber(celery: Any, runtime: Runtime, route: SubscriberRoute, policy: RetryPolicy) -> None:
    def body(task: Any, envelope: Any) -> str:
        try:
            return deliver(task, runtime, route, policy, envelope)
        except ParkingFailed as exc:
            # Nothing is lost: the message waits in the broker until the store is back.
            retries = int(getattr(task.request, "retries", 0) or 0)
            delay = min(2.0**retries, MAX_RETRY_DELAY)
            raise task.retry(exc=_portable(exc), countdown=delay, max_retries=None) from exc

    body.__name__ = route.name
    body.__doc__ = f"Protean broker subscriber {route.path} (broker {route.broker!r}, stream {route.stream!r})."
    celery.task(
        name=route.task_name, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
        typing=False, shared=False,
    )(body)


def deliver(task: Any, runtime: Runtime, route: SubscriberRoute, policy: RetryPolicy, envelope: Any) -> str:
    """The body of every subscriber task (see the module docstring for the failure table).

    Returns:
        ``"handled"``, or ``"duplicate"`` when the inbox says the subscriber already handled it.
    """
    try:
        check_size(envelope, runtime.settings.max_payload_bytes, route.task_name)
        delivery = unwrap(envelope)
    except MessageError as exc:
        _reject(runtime, route, envelope, exc)
    try:
        with runtime.commits.deferred():
            handled = run_subscriber(runtime.domain, route.subscriber, delivery, runtime.inbox)
    except Exception as exc:
        retries = int(getattr(task.request, "retries", 0) or 0)
        failure = classify(exc)
        budget = policy.budget(failure)
        shown = describe_delivery(envelope)
        if retries >= budget:
            logger.error("%s: %s failed after %d attempts (%s error), dead-lettered: %r", route.task_name, shown,
                         retries + 1, failure.value, exc)
            _park(runtime, route, envelope, exc, attempts=retries + 1)
            raise
        delay = policy.delay(failure, retries)
        logger.warning("%s: %s failed (attempt %d, %s error), retrying in %.2fs: %r", route.task_name, shown,
                       retries + 1, failure.value, delay, exc)
        raise task.retry(exc=_portable(exc), countdown=delay, max_retries=budget) from exc
    if not handled:
        logger.info("%s: duplicate %s acknowledged without handling", route.task_name, describe_delivery(envelope))
        return "duplicate"
    runtime.nudge()
    return "handled"


def _reject(runtime: Runtime, route: SubscriberRoute, envelope: Any, exc: MessageError) -> NoReturn:
    logger.error("%s: %s rejected: %s", route.task_name, describe_delivery(envelope), exc)
    _park(runtime, route, envelope, exc)
    raise Reject(str(exc), requeue=False) from exc


def _park(runtime: Runtime, route: SubscriberRoute, envelope: Any, error: BaseException, attempts: int = 1) -> None:
    try:
        entry = runtime.dead_letters.park(route.task_name, envelope, error, attempts=attempts)
    except Exception as exc:  # the store is down: keep the message in the broker until it is back
        raise ParkingFailed(f"The dead-letter store is unavailable ({exc!r}) while parking: {error}") from exc
    logger.warning("%s: %s dead-lettered as %s", route.task_name, describe_delivery(envelope), entry)
