"""Deterministic in-process drain, for tests: relay, consume every queue, run the task bodies.

The app must be bound to Kombu's in-memory transport (``broker_url =
"memory://"``): routing stays real (the relay publishes to the same exchanges
and bindings a worker consumes), but every message is pulled here and run
through the same task body a worker runs, one at a time, in topology order
(``protean_celery.drain.run_pending``, which ``celery -A app protean drain``
runs on a real broker). A drain ends when a full pass finds nothing to relay,
no queued message and nothing pending, or when ``until()`` holds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from protean_celery.broker import broker_for
from protean_celery.drain import DrainError, DrainReport, HandlerFailure, run_pending

__all__ = ["DrainError", "DrainReport", "HandlerFailure", "drain", "queue_depths"]


def drain(
    app: Any,
    until: Callable[[], bool] | None = None,
    *,
    timeout: float = 60.0,
    max_cycles: int = 1000,
    raise_errors: bool = True,
) -> DrainReport:
    """Run every pending message of ``app`` to the end (:func:`protean_celery.drain.run_pending`, same options).

    ``app`` must be on ``memory://``. A drain that stops on ``timeout`` or
    ``max_cycles`` warns with what is still pending; one that read commands no
    handler of the app takes warns with how many.

    Raises:
        DrainError: a handler failed and ``raise_errors`` is true.
        RuntimeError: the app is not on ``memory://``.
    """
    _require_memory(app)
    report = run_pending(app, until, timeout=timeout, max_cycles=max_cycles, raise_errors=raise_errors)
    if not report.satisfied:
        bound = "until() never held" if until is not None and report.cycles < max_cycles else "a bound ran out"
        warnings.warn(
            f"drain stopped after {report.cycles} cycles ({bound}); still queued: {report.pending or 'nothing'}; "
            f"outbox rows, commands and stored events not yet relayed: {report.unrelayed}",
            RuntimeWarning,
            stacklevel=2,
        )
    if report.unrouted:
        warnings.warn(
            f"drain read {report.unrouted} command(s) that no handler of this app takes; they were dead-lettered: "
            "register their command handlers",
            RuntimeWarning,
            stacklevel=2,
        )
    return report


def queue_depths(app: Any) -> dict[str, int]:
    """Messages waiting in each queue of ``app``'s topology."""
    return broker_for(app).depths(queue.name for queue in app.topology.queues)


def _require_memory(app: Any) -> None:
    url = str(app.conf.broker_url or "")
    if not url.startswith("memory://"):
        raise RuntimeError(
            f"drain() runs on Kombu's in-memory transport; this app's broker is {url.split('@')[-1]!r}. "
            "Build the test app with config={'broker_url': 'memory://'} (the protean_celery_app fixture does)."
        )
