"""Deferral: an ordered handler's message that came before its turn goes back to its queue for a moment.

It is not a failure: the handler did not run (its Unit of Work rolled back before
the handler was called), ``handle_error`` is not called and the handler's retry
budgets are untouched. The task publishes a copy of itself (same task id, same
``retries``) after a short countdown (:data:`DEFER_PACE`: 50 ms doubling, capped at
2 s, jittered) with a header counting the deferrals, and returns ``"deferred"``.
After ``ordering_retries`` deferrals (default 100: about three minutes)
the message is dead-lettered as :class:`~protean_celery.errors.OrderingGap`,
naming the position it waited for: replay (or purge) the dead letter of that
predecessor first, then replay this one.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, NoReturn

from celery.exceptions import Reject

from protean_celery.errors import OrderingGap, OutOfTurn
from protean_celery.tasks.retry import Pace

__all__ = ["DEFERRED", "DEFER_PACE", "WAITS_HEADER", "defer", "waits"]

logger = logging.getLogger(__name__)

#: The outcome a deferred task returns.
DEFERRED = "deferred"
#: The message header counting how often a message was deferred.
WAITS_HEADER = "protean_ordering_waits"
#: How soon a deferred message comes back, before jitter.
DEFER_PACE = Pace(0.05, 2.0)


def waits(request: Any) -> int:
    """How often the message of ``request`` was deferred so far."""
    value = getattr(request, WAITS_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(WAITS_HEADER)
    return int(value or 0)


def defer(task: Any, exc: OutOfTurn, budget: int, park: Callable[[BaseException, int], None]) -> str:
    """Publish the task's message again after a short countdown, or dead-letter it once ``budget`` is spent.

    Args:
        task: the bound handler task.
        exc: why the message is not handled yet.
        budget: ``ordering_retries``.
        park: dead-letters the message with an error and its attempts.

    Returns:
        ``"deferred"``.

    Raises:
        Reject: the budget is spent and the message was dead-lettered as ``OrderingGap``.
    """
    request = task.request
    done = waits(request)
    if done >= budget:
        _give_up(task, exc, done, park)
    delay = DEFER_PACE.delay(done) * (0.75 + random.random() / 2)
    headers = {**(getattr(request, "headers", None) or {}), WAITS_HEADER: done + 1}
    task.signature_from_request(request, countdown=delay, headers=headers).apply_async()
    logger.info("%s: %s; deferred %.2fs (wait %d of %d)", task.name, exc, delay, done + 1, budget)
    return DEFERRED


def _give_up(task: Any, exc: OutOfTurn, done: int, park: Callable[[BaseException, int], None]) -> NoReturn:
    gap = OrderingGap(
        f"{exc}: waited {done} times (ordering_retries) for it. Handle or replay the message at position "
        f"{exc.fields.get('missing')} of that stream for this handler first (see `protean dlq list`), then "
        "replay this dead letter.",
        **exc.fields,
    )
    logger.error("%s: dead-lettered: %s", task.name, gap)
    park(gap, done + 1)
    raise Reject(str(gap), requeue=False) from exc
