"""Protean broker subscribers (``@domain.subscriber``) under Celery.

Each subscriber gets its own task and queue (:mod:`.routes`); the bridge task
moves its broker stream into that queue with the broker's consumer group as the
durable position (:mod:`.bridge`); the task runs the subscriber with the inbox,
retries and dead letters of every handler (:mod:`.task`, :mod:`.run`).
``Subscribers`` puts them together for one app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kombu import Queue

from protean_celery.errors import DeadLetterError
from protean_celery.subscribers.bridge import Bridge, BridgeReport, require_consumer_groups
from protean_celery.subscribers.delivery import Delivery, describe_delivery
from protean_celery.subscribers.policy import subscriber_policy
from protean_celery.subscribers.routes import SubscriberRoute, bridge_entries, bridge_task_name, read_subscribers
from protean_celery.subscribers.task import register_subscriber_tasks

if TYPE_CHECKING:
    from protean_celery.runtime import Runtime

__all__ = ["Bridge", "BridgeReport", "Delivery", "SubscriberRoute", "Subscribers", "read_subscribers"]


class Subscribers:
    """An app's broker subscribers: routes, bridge, tasks, schedule.

    Args:
        celery: the ``ProteanCelery`` app.
        runtime: its runtime (topology, settings, inbox, dead letters).

    Raises:
        ConfigurationError: a subscriber names a broker that is not configured, or
            one without consumer groups; ``[server.broker_subscription]`` is malformed.
        TopologyError: a subscriber's task name collides with a handler's.
    """

    def __init__(self, celery: Any, runtime: Runtime) -> None:
        domain, settings, topology = runtime.domain, runtime.settings, runtime.topology
        self.routes = read_subscribers(
            domain, settings.queue_prefix, taken=[route.task_name for route in topology.routes]
        )
        for route in self.routes:
            require_consumer_groups(domain, route)
        self.bridge_task = bridge_task_name(settings.queue_prefix, domain.normalized_name)
        self.bridge = Bridge(
            celery, domain, self.routes, settings.relay_batch_size, settings.relay_max_batches,
            settings.subscriber_reclaim_seconds,
        )
        self._relay_queue = topology.relay_queue.name
        self._interval = settings.relay_interval
        policies = {route.name: subscriber_policy(domain.config, settings, route.name) for route in self.routes}
        if self.routes:
            register_subscriber_tasks(celery, runtime, self.bridge, policies, self.bridge_task)

    @property
    def queues(self) -> tuple[Queue, ...]:
        """The subscribers' queues (a worker consumes them beside the handler queues)."""
        return tuple(route.queue for route in self.routes)

    def task_routes(self) -> dict[str, dict[str, str]]:
        """Celery's ``task_routes`` for the subscriber tasks and the bridge task."""
        routes = {route.task_name: {"queue": route.queue.name} for route in self.routes}
        if self.routes:
            routes[self.bridge_task] = {"queue": self._relay_queue}
        return routes

    def beat_entries(self) -> dict[str, dict[str, Any]]:
        """One bridge entry per subscriber, every relay interval."""
        return bridge_entries(self.routes, self.bridge_task, self._relay_queue, self._interval)

    def as_list(self) -> list[dict[str, str]]:
        """Each subscriber's task, queue and source, JSON-ready (``protean topology --json``)."""
        return [
            {"task": route.task_name, "kind": "subscriber", "subscriber": route.path, "queue": route.queue.name,
             "broker": route.broker, "stream": route.stream, "consumer_group": route.group,
             "bridge": self.bridge_task}
            for route in self.routes
        ]

    def describe(self) -> str:
        """The subscribers' part of ``celery -A app protean topology``."""
        lines = []
        for item in self.as_list():
            lines.append(f"task     {item['task']}  [subscriber] {item['subscriber']}")
            lines.append(f"  queue    {item['queue']} (durable)")
            lines.append(f"  reads    broker {item['broker']!r} stream {item['stream']!r} "
                         f"(consumer group {item['consumer_group']})")
            lines.append(f"  bridge   {item['bridge']} on the relay queue")
        return "\n".join(lines)

    def owns(self, task: str) -> bool:
        """Whether ``task`` is one of the subscriber tasks."""
        return any(route.task_name == task for route in self.routes)

    def replay(self, runtime: Runtime, entry_id: str) -> str:
        """Republish a subscriber's dead letter to its queue and forget it; returns the task id.

        Raises:
            DeadLetterError: no such entry, or it is not a subscriber's.
        """
        entry = runtime.dead_letters.get(entry_id)
        route = next((r for r in self.routes if r.task_name == entry.task), None)
        envelope = entry.payload
        if route is None or not isinstance(envelope, dict):
            raise DeadLetterError(f"Dead letter {entry_id} is not a broker subscriber's message of this app.")
        task_id = f"replay-{entry.id}"
        self.bridge.celery.send_task(
            route.task_name, args=(envelope,), task_id=task_id, exchange=route.exchange,
            routing_key=route.task_name, declare=[route.queue], argsrepr=describe_delivery(envelope), kwargsrepr="{}",
        )
        runtime.dead_letters.remove(entry.id)
        return task_id
