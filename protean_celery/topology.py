"""Handler specs → Kombu exchanges, queues, bindings and task routes. Pure.

Each handler task gets its own durable queue and its own topic exchange, both
named after the task. The queue is bound to the exchange once per stream
category the handler consumes, with the category verbatim as the binding key
(``#`` for ``$all``). The relay publishes one task message per subscribed
handler to that handler's exchange with ``routing_key = stream category``, so
a message reaches exactly the handler it names, and ``protean topology`` shows
which categories feed which handler. With Protean's priority lanes enabled each
handler also gets a backfill queue and exchange, ``<task>.<suffix>``, bound the
same way (see :mod:`protean_celery.lanes`). Nothing here opens a connection:
Kombu entities are declarations until bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kombu import Exchange, Queue, binding

from protean_celery import naming
from protean_celery.errors import TopologyError
from protean_celery.lanes import Lanes
from protean_celery.registry import HandlerKind, HandlerSpec

__all__ = ["RELAY_TASKS", "Route", "Topology", "build_topology"]

#: The tasks on the relay queue: the outbox relay, the command relay, maintenance, the redelivery sweep,
#: and the tick that fires due deadlines.
RELAY_TASKS = ("outbox", "commands", "maintenance", "sweep", "deadlines")


@dataclass(frozen=True)
class Route:
    """One handler task with its queue and exchange, and its backfill lane's when lanes are on."""

    spec: HandlerSpec
    task_name: str
    exchange: Exchange
    queue: Queue
    backfill_exchange: Exchange | None = None
    backfill_queue: Queue | None = None

    @property
    def queues(self) -> tuple[Queue, ...]:
        """The handler's queues: its own, then its backfill lane's."""
        return (self.queue,) if self.backfill_queue is None else (self.queue, self.backfill_queue)

    def lane(self, backfill: bool) -> tuple[Exchange, Queue]:
        """The exchange and queue a message goes to: the backfill lane's when ``backfill`` and lanes are on."""
        if backfill and self.backfill_exchange is not None and self.backfill_queue is not None:
            return self.backfill_exchange, self.backfill_queue
        return self.exchange, self.queue


@dataclass(frozen=True)
class Topology:
    """The declared shape of a domain on the broker.

    Attributes:
        domain: the domain's normalized name.
        routes: one route per handler task.
        relay_queue: the queue of the relay tasks.
        relay_tasks: the relay-queue task names (``outbox``, ``commands``, ``maintenance``, ``sweep``,
            ``deadlines``).
        known_types: every event and command type the domain registers.
        lanes: Protean's priority lanes, when enabled.
    """

    domain: str
    routes: tuple[Route, ...]
    relay_queue: Queue
    relay_tasks: dict[str, str]
    known_types: frozenset[str]
    lanes: Lanes | None = None

    @property
    def queues(self) -> tuple[Queue, ...]:
        """Every queue a worker consumes: handler queues, the relay queue, then backfill queues."""
        backfill = tuple(route.backfill_queue for route in self.routes if route.backfill_queue is not None)
        return (*(route.queue for route in self.routes), self.relay_queue, *backfill)

    def backfill_left_out(self, consumed: Iterable[str]) -> list[str]:
        """The backfill queues not in ``consumed`` whose handler queue is (a ``-Q`` naming only the handler's).

        Args:
            consumed: names of the queues the workers consume.
        """
        names = set(consumed)
        return [
            route.backfill_queue.name for route in self.routes
            if route.backfill_queue is not None and route.queue.name in names and route.backfill_queue.name not in names
        ]

    def queue_tasks(self) -> dict[str, str]:
        """Every handler queue's name (backfill lanes too) → its task name."""
        return {queue.name: route.task_name for route in self.routes for queue in route.queues}

    def task_routes(self) -> dict[str, dict[str, str]]:
        """Celery's ``task_routes``: every task to its own queue."""
        routes = {route.task_name: {"queue": route.queue.name} for route in self.routes}
        routes.update({name: {"queue": self.relay_queue.name} for name in self.relay_tasks.values()})
        return routes

    def route(self, task_name: str) -> Route:
        """The route of ``task_name``; ``KeyError`` when unknown."""
        for candidate in self.routes:
            if candidate.task_name == task_name:
                return candidate
        raise KeyError(task_name)

    def targets(self, category: str, message_type: str) -> tuple[Route, ...]:
        """The handler tasks a message of ``category`` and ``message_type`` goes to.

        A type the domain does not register (an old version an upcaster will
        raise, say) goes to every handler of the category: the task decides.
        """
        known = message_type in self.known_types
        return tuple(
            route
            for route in self.routes
            if _consumes(route.spec, category) and (not known or route.spec.accepts(message_type))
        )

    def takes_command(self, message_type: str) -> bool:
        """Whether a command dispatcher of this app has a handler for the command type ``message_type``."""
        return any(
            route.spec.kind is HandlerKind.COMMAND_DISPATCHER and route.spec.handler_for(message_type) is not None
            for route in self.routes
        )

    def command_categories(self) -> tuple[str, ...]:
        """The command stream categories the command relay reads."""
        return tuple(
            route.spec.categories[0]
            for route in self.routes
            if route.spec.kind is HandlerKind.COMMAND_DISPATCHER
        )

    def as_dict(self) -> dict[str, object]:
        """The same listing as ``describe``, as JSON-ready data (``protean topology --json``)."""
        return {
            "domain": self.domain,
            "tasks": [
                {
                    "task": route.task_name,
                    "kind": route.spec.kind.value,
                    "handler": route.spec.path,
                    "exchange": route.exchange.name,
                    "exchange_type": route.exchange.type,
                    "queue": route.queue.name,
                    "backfill_queue": route.backfill_queue.name if route.backfill_queue is not None else None,
                    "bindings": [naming.binding_key(category) for category in route.spec.categories],
                    "handles": sorted(route.spec.message_types),
                }
                for route in self.routes
            ],
            "relay": {"queue": self.relay_queue.name, "tasks": dict(sorted(self.relay_tasks.items()))},
        }

    def describe(self) -> str:
        """A human-readable listing for ``celery -A app protean topology``."""
        lines = [f"domain {self.domain}", ""]
        for route in self.routes:
            spec = route.spec
            lines.append(f"task     {route.task_name}  [{spec.kind.value}] {spec.path}")
            lines.append(f"  exchange {route.exchange.name} ({route.exchange.type}, durable)")
            lines.append(f"  queue    {route.queue.name} (durable)")
            if route.backfill_queue is not None and self.lanes is not None:
                lines.append(f"  backfill {route.backfill_queue.name} (durable, priority below {self.lanes.threshold})")
            for category in spec.categories:  # the queue's bindings, in the handler's order
                lines.append(f"  binding  {naming.binding_key(category)}")
            types = sorted(spec.message_types) or ["<any>"]
            lines.append(f"  handles  {', '.join(types)}")
        lines.append(f"relay    queue {self.relay_queue.name}")
        for _what, name in sorted(self.relay_tasks.items()):
            lines.append(f"  task     {name}")
        return "\n".join(lines)


def build_topology(
    domain_name: str,
    specs: Iterable[HandlerSpec],
    *,
    prefix: str = "protean",
    known_types: Iterable[str] = (),
    lanes: Lanes | None = None,
) -> Topology:
    """Build the topology of ``specs`` (with a backfill lane per handler when ``lanes`` is given).

    Raises:
        TopologyError: two handlers map to one task name, or a category cannot
            be a routing key.
    """
    routes: list[Route] = []
    owners: dict[str, str] = {}
    for spec in specs:
        name = _task_name(prefix, domain_name, spec)
        if name in owners:
            raise TopologyError(
                f"{owners[name]} and {spec.path} both map to task {name!r}: rename one of the "
                "classes (task names are protean.<domain>.<HandlerClass> so Flower shows each)."
            )
        owners[name] = spec.path
        exchange, queue = _handler_queue(name, spec)
        backfill = _handler_queue(f"{name}.{lanes.suffix}", spec) if lanes is not None else (None, None)
        routes.append(Route(spec, name, exchange, queue, *backfill))
    relay_name = naming.relay_queue_name(prefix, domain_name)
    relay_queue = Queue(relay_name, exchange=Exchange(relay_name, type="direct"), routing_key=relay_name, durable=True)
    relay_tasks = {what: naming.relay_task_name(prefix, domain_name, what) for what in RELAY_TASKS}
    return Topology(
        domain=domain_name,
        routes=tuple(routes),
        relay_queue=relay_queue,
        relay_tasks=relay_tasks,
        known_types=frozenset(known_types),
        lanes=lanes,
    )


def _handler_queue(name: str, spec: HandlerSpec) -> tuple[Exchange, Queue]:
    """A topic exchange and a durable queue named ``name``, bound once per category of ``spec``."""
    exchange = Exchange(name, type="topic", durable=True)
    bindings = [binding(exchange, routing_key=naming.binding_key(cat)) for cat in spec.categories]
    queue = Queue(name, routing_key=bindings[0].routing_key, bindings=bindings, durable=True)
    # Kombu drops a queue's exchange when it has bindings, and Celery then gives it
    # the default (relay) exchange, binding every handler queue there too. Set it back:
    # declaring the first binding twice is a no-op.
    queue.exchange = exchange
    return exchange, queue


def _task_name(prefix: str, domain_name: str, spec: HandlerSpec) -> str:
    if spec.kind is HandlerKind.COMMAND_DISPATCHER:
        return naming.command_task_name(prefix, domain_name, spec.name)
    return naming.task_name(prefix, domain_name, spec.name)


def _consumes(spec: HandlerSpec, category: str) -> bool:
    return category in spec.categories or naming.ALL_STREAMS in spec.categories
