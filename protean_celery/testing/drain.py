"""Deterministic in-process drain: relay, consume every queue, run the task bodies.

The app must be bound to Kombu's in-memory transport (``broker_url =
"memory://"``): routing stays real (the relay publishes to the same exchanges
and bindings a worker consumes), but every message is pulled here and run
through the same task body a worker runs, one at a time, in topology order.
A drain ends when a full pass finds nothing to relay, no queued message and
nothing pending, or when ``until()`` holds.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import Reject

from protean_celery.broker import broker_for

__all__ = ["DrainError", "DrainReport", "HandlerFailure", "drain", "queue_depths"]


@dataclass(frozen=True)
class HandlerFailure:
    """A message a handler task could not handle."""

    task: str
    message_type: str
    message_id: str
    error: BaseException

    def __str__(self) -> str:
        return f"{self.task} failed on {self.message_type} {self.message_id}: {self.error!r}"


class DrainError(AssertionError):
    """A handler failed during a drain (raised with the first failure)."""

    def __init__(self, failure: HandlerFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


@dataclass
class DrainReport:
    """What a drain did."""

    cycles: int = 0
    tasks: int = 0
    relayed: int = 0
    failures: list[HandlerFailure] = field(default_factory=list)
    satisfied: bool = False
    pending: dict[str, int] = field(default_factory=dict)
    unrelayed: int = 0


def drain(
    app: Any,
    until: Callable[[], bool] | None = None,
    *,
    timeout: float = 60.0,
    max_cycles: int = 1000,
    raise_errors: bool = True,
) -> DrainReport:
    """Run every pending message of ``app`` to the end.

    Args:
        app: a ``ProteanCelery`` app on ``memory://``.
        until: stop as soon as this returns true.
        timeout: seconds before giving up (warns with what is still pending).
        max_cycles: relay-and-consume passes before giving up (warns likewise).
        raise_errors: raise :class:`DrainError` on the first handler failure;
            when false, failures are collected in the report and the drain goes on.

    Returns:
        The report (``satisfied`` is false when a bound ran out first).
    """
    _require_memory(app)
    report = DrainReport()
    deadline = time.monotonic() + timeout
    while report.cycles < max_cycles and time.monotonic() < deadline:
        report.cycles += 1
        report.relayed += app.runtime.relay.run().moved
        ran = _consume(app, report, raise_errors)
        if until is not None and until():
            report.satisfied = True
            return report
        if ran == 0 and app.runtime.relay.pending() == 0 and not any(queue_depths(app).values()):
            report.satisfied = until is None
            break
    report.pending = {name: depth for name, depth in queue_depths(app).items() if depth}
    report.unrelayed = app.runtime.relay.pending()
    if not report.satisfied:
        bound = "until() never held" if until is not None and report.cycles < max_cycles else "a bound ran out"
        warnings.warn(
            f"drain stopped after {report.cycles} cycles ({bound}); still queued: {report.pending or 'nothing'}; "
            f"outbox rows and commands not yet relayed: {report.unrelayed}",
            RuntimeWarning,
            stacklevel=2,
        )
    return report


def queue_depths(app: Any) -> dict[str, int]:
    """Messages waiting in each queue of ``app``'s topology."""
    return broker_for(app).depths(queue.name for queue in app.topology.queues)


def _consume(app: Any, report: DrainReport, raise_errors: bool) -> int:
    ran = 0
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        for queue in app.topology.queues:
            bound = queue.bind(channel)
            while (message := bound.get(no_ack=True, accept=["json"])) is not None:
                ran += 1
                report.tasks += 1
                failure = _run(app, message)
                if failure is not None:
                    if raise_errors:
                        raise DrainError(failure) from failure.error
                    report.failures.append(failure)
    return ran


def _run(app: Any, message: Any) -> HandlerFailure | None:
    name = message.headers["task"]
    args, kwargs = message.payload[0], message.payload[1]
    task = app.tasks.get(name)
    if task is None:
        return HandlerFailure(name, "?", message.headers.get("id", "?"), KeyError(f"unregistered task {name}"))
    result = task.apply(args=args, kwargs=kwargs, task_id=message.headers["id"])
    if result.successful():
        return None
    error = result.result if isinstance(result.result, BaseException) else RuntimeError(str(result.result))
    if isinstance(error, Reject):
        error = error.reason if isinstance(error.reason, BaseException) else RuntimeError(str(error.reason))
    payload = args[0] if args else {}
    headers = (payload.get("metadata") or {}).get("headers") or {} if isinstance(payload, dict) else {}
    return HandlerFailure(name, str(headers.get("type", "?")), str(headers.get("id", "?")), error)


def _require_memory(app: Any) -> None:
    url = str(app.conf.broker_url or "")
    if not url.startswith("memory://"):
        raise RuntimeError(
            f"drain() runs on Kombu's in-memory transport; this app's broker is {url.split('@')[-1]!r}. "
            "Build the test app with config={'broker_url': 'memory://'} (the protean_celery_app fixture does)."
        )
