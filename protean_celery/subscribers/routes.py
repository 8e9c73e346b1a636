"""Broker subscribers → their tasks, queues and bridge schedule. Pure: no I/O.

A Protean domain declares ``@domain.subscriber(broker="payments", stream="charges")``
classes: anti-corruption layers that take raw ``dict`` payloads from a stream of
one of the domain's Protean brokers. Each gets its own Celery task, queue and
direct exchange, all named ``<prefix>.<domain>.<SubscriberClass>`` (as handler
tasks are), so Flower shows each by name. The bridge task
``<prefix>.<domain>.relay.subscribers`` (on the relay queue, one beat entry per
subscriber) moves the stream's messages into that queue.

The subscriber reads with a consumer group named after the subscriber's dotted
path, the group Protean's own ``BrokerSubscription`` uses: a domain moving from
``protean server`` to Celery resumes where the server stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kombu import Exchange, Queue
from protean.utils import fqn

from protean_celery import naming
from protean_celery.errors import ConfigurationError, TopologyError

__all__ = ["SubscriberRoute", "read_subscribers", "bridge_task_name", "bridge_entries"]


@dataclass(frozen=True)
class SubscriberRoute:
    """One broker subscriber with its task, queue and source stream.

    Attributes:
        name: the subscriber class name.
        path: its dotted path (also the consumer group on the broker).
        subscriber: the subscriber class.
        broker: the name of the Protean broker it reads (``[brokers.<name>]``).
        stream: the broker stream it reads.
        task_name: its Celery task (= queue = exchange) name.
        exchange: its direct exchange.
        queue: its durable queue.
    """

    name: str
    path: str
    subscriber: Any
    broker: str
    stream: str
    task_name: str
    exchange: Exchange
    queue: Queue

    @property
    def group(self) -> str:
        """The consumer group on the broker: the subscriber's dotted path, as Protean's server names it."""
        return self.path


def read_subscribers(
    domain: Any, prefix: str = "protean", taken: Iterable[str] = ()
) -> tuple[SubscriberRoute, ...]:
    """The broker subscribers ``domain`` registers, each with its route, in a stable order.

    Args:
        domain: the Protean domain (its registry and ``config["brokers"]``).
        prefix: first part of every task name (``[custom.celery] queue_prefix``).
        taken: task names already used by handler tasks.

    Raises:
        ConfigurationError: a subscriber names a broker the domain does not configure.
        TopologyError: a subscriber's task name is already taken.
    """
    brokers: Mapping[str, Any] = domain.config.get("brokers") or {}
    owners = {name: "a handler task" for name in taken}
    routes = []
    records = sorted((r for r in domain.registry.subscribers.values() if not r.internal), key=lambda r: fqn(r.cls))
    for record in records:
        cls = record.cls
        broker, stream = str(cls.meta_.broker), str(cls.meta_.stream)
        if broker not in brokers:
            raise ConfigurationError(
                f"Subscriber {fqn(cls)} reads stream {stream!r} of broker {broker!r}, which the domain does not "
                f"configure (configured: {', '.join(sorted(brokers)) or 'none'}). Add [brokers.{broker}] to "
                "domain.toml or set broker= on the subscriber to one of those.",
                subscriber=fqn(cls), broker=broker,
            )
        name = naming.task_name(prefix, domain.normalized_name, cls.__name__)
        if name in owners:
            raise TopologyError(
                f"{owners[name]} and subscriber {fqn(cls)} both map to task {name!r}: rename one of the classes "
                "(task names are <prefix>.<domain>.<Class> so Flower shows each)."
            )
        owners[name] = fqn(cls)
        exchange = Exchange(name, type="direct", durable=True)
        queue = Queue(name, exchange=exchange, routing_key=name, durable=True)
        routes.append(SubscriberRoute(cls.__name__, fqn(cls), cls, broker, stream, name, exchange, queue))
    return tuple(routes)


def bridge_task_name(prefix: str, domain: str) -> str:
    """The bridge task's name: ``<prefix>.<domain>.relay.subscribers`` (on the relay queue)."""
    return naming.relay_task_name(prefix, domain, "subscribers")


def bridge_entries(
    routes: Iterable[SubscriberRoute], task: str, relay_queue: str, interval: float
) -> dict[str, dict[str, Any]]:
    """The ``beat_schedule`` entries of the bridge: one per subscriber, every ``interval`` seconds.

    Each tick expires after one interval, as the relay's do: a backlog of ticks never piles up.
    """
    return {
        f"{task}[{route.name}]": {
            "task": task,
            "schedule": interval,
            "kwargs": {"subscriber": route.name},
            "options": {"queue": relay_queue, "expires": interval},
        }
        for route in routes
    }
