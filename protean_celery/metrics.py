"""What ``protean metrics`` exposes: samples computed from the broker and the state at scrape time (I/O).

Nothing is counted in memory: every sample is read from where the truth lives
(the broker's queues, the outbox tables, the event store and the cursors, the
dead letters, the redelivery ledger, the inbox) when a scrape asks, so any
number of exporters, restarted at any time, agree. Every metric is therefore a
gauge, the inbox markers included: they count messages handled and still
remembered, and fall when the maintenance task prunes markers older than
``inbox_retention_hours``.

Each source is read in its own thread, ``timeout`` seconds at most in all
(:mod:`protean_celery.bounded`); a source that fails or does not answer gives
``protean_celery_up{component=…} 0`` and a failure naming it, and its samples
are left out, never guessed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from protean_celery.health import INNER_SHARE, Check, run

__all__ = ["HELP", "Sample", "Scrape", "collect"]

#: Every metric name with its help text (all gauges).
HELP: dict[str, str] = {
    "protean_celery_queue_depth": "Messages waiting (ready, not yet delivered) in a task's queue.",
    "protean_celery_queue_lag_seconds": (
        "Age of the oldest message waiting in a task's queue, from its Protean headers.time "
        "(0 when the queue is empty; absent where the broker cannot show it: AMQP)."
    ),
    "protean_celery_in_flight_messages": "Messages delivered to workers and not yet acknowledged.",
    "protean_celery_outbox_rows": "Outbox rows per status (failed excludes stuck: failed with no retries left).",
    "protean_celery_outbox_pending": "Outbox rows the relay still has to publish (pending, processing, failed).",
    "protean_celery_outbox_oldest_pending_age_seconds": (
        "Age of the oldest outbox row the relay still has to publish, since it was written (0 when none)."
    ),
    "protean_celery_relay_pending": (
        "Outbox rows, commands and (outbox off) events the relay still has to publish (up to 1000 per category)."
    ),
    "protean_celery_commands_unrelayed": "Commands (outbox off: and events) in the event store past the relay cursors.",
    "protean_celery_dead_letters": "Dead letters per task.",
    "protean_celery_sweep_watched": "Relayed messages the redelivery sweep is still watching.",
    "protean_celery_inbox_markers": (
        "Messages handled per handler and still remembered by the inbox (a gauge: markers older than "
        "inbox_retention_hours are pruned)."
    ),
    "protean_celery_up": "1 when the component answered this scrape, else 0 (its samples are left out).",
    "protean_celery_scrape_duration_seconds": "How long this scrape took.",
}


@dataclass(frozen=True)
class Sample:
    """One value of one metric.

    Attributes:
        name: the metric name (a key of :data:`HELP`).
        value: the value.
        labels: the label values, by label name (the same names for every sample of a metric).
    """

    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scrape:
    """One scrape: its samples and the components that failed (with what was seen)."""

    samples: list[Sample]
    failures: list[Check]


def collect(app: Any, timeout: float = 5.0) -> Scrape:
    """Read every metric of ``app`` now, ``timeout`` seconds at most.

    Args:
        app: the ProteanCelery app.
        timeout: seconds to wait for all sources together.
    """
    started = time.monotonic()
    sources: dict[str, Callable[[], list[Sample]]] = {
        "broker": partial(broker_samples, app, timeout * INNER_SHARE),
        "outbox": partial(outbox_samples, app),
        "state": partial(state_samples, app),
        "inbox": partial(inbox_samples, app),
    }
    gathered: dict[str, list[Sample]] = {}
    checks = run(app, {name: partial(_gather, name, source, gathered) for name, source in sources.items()}, timeout)
    samples: list[Sample] = []
    for check in checks:
        samples.append(Sample("protean_celery_up", 1.0 if check.ok else 0.0, {"component": check.name}))
        if check.ok:
            samples.extend(gathered.get(check.name, []))
    samples.append(Sample("protean_celery_scrape_duration_seconds", time.monotonic() - started))
    return Scrape(samples, [check for check in checks if not check.ok])


def broker_samples(app: Any, timeout: float) -> list[Sample]:
    """Queue depth and lag per task queue, and messages in flight (after one connection attempt).

    Raises:
        Unhealthy: the broker cannot be reached (the message names it, without a password).
    """
    from protean_celery.broker import broker_for
    from protean_celery.health import Unhealthy, broker

    reached = broker(app, timeout)
    if not reached.ok:
        raise Unhealthy(reached.detail)
    adapter = broker_for(app)
    tasks = app.topology.queue_tasks()
    names = [queue.name for queue in app.topology.queues]
    samples = []
    for queue, depth in adapter.depths(names).items():
        labels = {"queue": queue, "task": tasks.get(queue, "relay")}
        samples.append(Sample("protean_celery_queue_depth", float(depth), labels))
        lag = adapter.oldest_age(queue)
        if lag is not None:
            samples.append(Sample("protean_celery_queue_lag_seconds", lag, labels))
    ignore = set(app.topology.relay_tasks.values())
    in_flight = adapter.in_flight(ignore=ignore, timeout=timeout)
    samples.append(Sample("protean_celery_in_flight_messages", float(in_flight)))
    return samples


def outbox_samples(app: Any) -> list[Sample]:
    """Outbox rows per status, pending rows and their oldest age per provider, and the relay's backlog."""
    from protean_celery.outbox.admin import counts
    from protean_celery.waiting import oldest_unpublished

    samples = []
    pending_rows = 0
    by_provider = counts(app.domain)
    oldest = oldest_unpublished(app.domain)
    for provider, by_status in by_provider.items():
        for status, count in by_status.items():
            samples.append(Sample("protean_celery_outbox_rows", float(count), {"provider": provider, "status": status}))
        pending = by_status["pending"] + by_status["processing"] + by_status["failed"]
        pending_rows += pending
        samples.append(Sample("protean_celery_outbox_pending", float(pending), {"provider": provider}))
        age = oldest.get(provider)
        samples.append(
            Sample("protean_celery_outbox_oldest_pending_age_seconds", age or 0.0, {"provider": provider})
        )
    relay_pending = app.runtime.relay.pending()
    samples.append(Sample("protean_celery_relay_pending", float(relay_pending)))
    # relay.pending() counts the same outbox rows, read a moment later: the rest are commands
    # (and, with the outbox off, events) in the event store.
    samples.append(Sample("protean_celery_commands_unrelayed", float(max(relay_pending - pending_rows, 0))))
    return samples


def state_samples(app: Any) -> list[Sample]:
    """Dead letters per task (0 for every task without any) and the messages the sweep watches."""
    depth = {route.task_name: 0 for route in app.topology.routes}
    depth.update({name: 0 for name in app.topology.relay_tasks.values()})
    depth.update(app.runtime.dead_letters.depth())
    samples = [Sample("protean_celery_dead_letters", float(count), {"task": task}) for task, count in depth.items()]
    samples.append(Sample("protean_celery_sweep_watched", float(app.runtime.ledger.count())))
    return samples


def inbox_samples(app: Any) -> list[Sample]:
    """Inbox markers per handler (none when the default provider keeps no markers: memory)."""
    from sqlalchemy import func, select

    from protean_celery.inbox import inbox_table

    inbox = app.runtime.inbox
    if not inbox.enabled:
        return []
    query = select(inbox_table.c.handler, func.count()).group_by(inbox_table.c.handler)
    with inbox.engine.connect() as connection:
        return [
            Sample("protean_celery_inbox_markers", float(count), {"handler": str(handler)})
            for handler, count in connection.execute(query)
        ]


def _gather(name: str, source: Callable[[], list[Sample]], into: dict[str, list[Sample]]) -> Check:
    into[name] = source()
    return Check(name, True, f"{len(into[name])} samples")
