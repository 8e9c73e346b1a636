"""Run everything pending in this process: relay, consume every handler queue, run the task bodies.

Used by the test drain (``protean_celery.testing.drain``, on Kombu's in-memory
transport) and by ``celery -A app protean drain`` (on the app's real broker and
databases: Protean's ``protean server --test-mode``).

A pass fires due deadlines (``protean_celery.deadlines``: by the domain's clock,
so a test's fake clock decides what is due), relays outbox rows, commands and, with the
outbox off, events from the event store (``outbox/events.py``), and bridges the broker
subscribers' streams; then it takes each message of each queue of the app's topology and
of its subscribers (a handler task, a relay tick, a subscriber task), runs the same task body a
worker runs (``Task.apply``: retries run at once, an exhausted message is
dead-lettered as a worker would) and acknowledges it. A message taken but not
acknowledged (this process dies mid-task) goes back to its queue as it would
from a worker. The drain ends when a pass ran nothing and nothing is pending
(``protean_celery.backlog``: unrelayed rows and commands, queued and in-flight
messages), when ``until()`` holds, or when a bound runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import Reject

from protean_celery.backlog import backlog
from protean_celery.deadlines.firing import fire_due

__all__ = ["DrainError", "DrainReport", "HandlerFailure", "run_pending"]


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
    """What a drain did, and what it left.

    Attributes:
        cycles: relay-and-consume passes.
        tasks: messages run.
        relayed: outbox rows and commands published.
        failures: messages a handler could not handle (each dead-lettered, or an unknown task).
        satisfied: it ended because nothing was pending (or ``until()`` held), not on a bound.
        pending: messages still queued, by queue.
        unrelayed: outbox rows, commands and (with the outbox off) stored events still to publish.
        unrouted: commands read from the event store that no handler of the app takes (dead-lettered).
        in_flight: messages still delivered and unacknowledged (held by a worker).
    """

    cycles: int = 0
    tasks: int = 0
    relayed: int = 0
    failures: list[HandlerFailure] = field(default_factory=list)
    satisfied: bool = False
    pending: dict[str, int] = field(default_factory=dict)
    unrelayed: int = 0
    in_flight: int = 0
    unrouted: int = 0


def run_pending(
    app: Any,
    until: Callable[[], bool] | None = None,
    *,
    timeout: float = 60.0,
    max_cycles: int = 1000,
    raise_errors: bool = True,
) -> DrainReport:
    """Relay and run every pending message of ``app`` in this process.

    Args:
        app: a ``ProteanCelery`` app, on any broker.
        until: stop as soon as this returns true.
        timeout: seconds before giving up.
        max_cycles: relay-and-consume passes before giving up.
        raise_errors: raise :class:`DrainError` on the first handler failure;
            when false, failures are collected in the report and the drain goes on.

    Returns:
        The report (``satisfied`` is false when a bound ran out first).

    Raises:
        DrainError: a handler failed and ``raise_errors`` is true.
    """
    report = DrainReport()
    deadline = time.monotonic() + timeout
    while report.cycles < max_cycles and time.monotonic() < deadline:
        report.cycles += 1
        app.runtime.commits.flush()  # what this process's relay thread holds counts as pending too
        fire_due(app.runtime)
        relayed = app.runtime.relay.run()
        report.relayed += relayed.moved + _bridge(app)
        report.unrouted += relayed.unrouted
        ran = _consume(app, report, raise_errors)
        if until is not None and until():
            report.satisfied = True
            return report
        if ran == 0:
            left = backlog(app)
            if left.quiescent:
                report.satisfied = until is None
                break
            if left.in_flight:
                time.sleep(0.05)  # a worker holds messages: let it finish them
    left = backlog(app)
    report.pending = {name: depth for name, depth in left.queued.items() if depth}
    report.unrelayed, report.in_flight = left.unrelayed, left.in_flight
    return report


def _consume(app: Any, report: DrainReport, raise_errors: bool) -> int:
    ran = 0
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        for queue in (*app.topology.queues, *_subscriber_queues(app)):
            bound = queue.bind(channel)
            while (message := bound.get(no_ack=False, accept=list(app.conf.accept_content or ["json"]))) is not None:
                ran += 1
                report.tasks += 1
                failure = _run(app, message)
                message.ack()  # handled, or dead-lettered by the task as a worker would
                if failure is not None:
                    if raise_errors:
                        raise DrainError(failure) from failure.error
                    report.failures.append(failure)
    return ran


def _bridge(app: Any) -> int:
    """Move what the broker subscribers' streams hold into their queues; how many messages."""
    subscribers = getattr(app, "subscribers", None)
    if subscribers is None:
        return 0
    return sum(subscribers.bridge.run(route.name).published for route in subscribers.routes)


def _subscriber_queues(app: Any) -> tuple[Any, ...]:
    subscribers = getattr(app, "subscribers", None)
    return tuple(subscribers.queues) if subscribers is not None else ()


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
