"""A small domain for unit tests: one aggregate, two commands, a process manager,
a projector and an event handler. ``build_domain()`` registers fresh copies."""

from __future__ import annotations

from pathlib import Path

from protean import Domain, handle
from protean.core.aggregate import BaseAggregate
from protean.core.command import BaseCommand
from protean.core.command_handler import BaseCommandHandler
from protean.core.event import BaseEvent
from protean.core.event_handler import BaseEventHandler
from protean.core.process_manager import BaseProcessManager
from protean.fields import Identifier, Integer, String
from protean.utils.globals import current_domain

SENT: list[str] = []


class Order(BaseAggregate):
    order_id = Identifier(identifier=True)
    status = String(default="new")

    def place(self) -> None:
        self.status = "placed"
        self.raise_(OrderPlaced(order_id=self.order_id))

    def ship(self) -> None:
        self.status = "shipped"
        self.raise_(OrderShipped(order_id=self.order_id))


class PlaceOrder(BaseCommand):
    order_id = Identifier(identifier=True)


class ShipOrder(BaseCommand):
    order_id = Identifier(identifier=True)


class OrderPlaced(BaseEvent):
    order_id = Identifier(identifier=True)


class OrderShipped(BaseEvent):
    order_id = Identifier(identifier=True)


class OrderCommands(BaseCommandHandler):
    @handle(PlaceOrder)
    def place(self, command: PlaceOrder) -> None:
        order = Order(order_id=command.order_id)
        order.place()
        current_domain.repository_for(Order).add(order)

    @handle(ShipOrder)
    def ship(self, command: ShipOrder) -> None:
        repo = current_domain.repository_for(Order)
        order = repo.get(command.order_id)
        order.ship()
        repo.add(order)


class Notifier(BaseEventHandler):
    @handle(OrderShipped)
    def shipped(self, event: OrderShipped) -> None:
        SENT.append(event.order_id)


class Fulfilment(BaseProcessManager):
    order_id = Identifier()
    state = String()
    steps = Integer(default=0)

    @handle(OrderPlaced, start=True, correlate="order_id")
    def placed(self, event: OrderPlaced) -> None:
        self.state = "shipping"
        current_domain.process(ShipOrder(order_id=event.order_id))

    @handle(OrderShipped, correlate="order_id", end=True)
    def shipped(self, event: OrderShipped) -> None:
        self.state = "done"


class Ledger(BaseEventHandler):
    """Not registered by ``build_domain``: tests register it with the options they need."""

    @handle(OrderPlaced)
    def placed(self, event: OrderPlaced) -> None:
        pass


class Billing(BaseProcessManager):
    """Not registered by ``build_domain``: tests register it with the options they need."""

    order_id = Identifier()
    state = String()

    @handle(OrderPlaced, start=True, correlate="order_id")
    def placed(self, event: OrderPlaced) -> None:
        self.state = "billing"


#: The one name the shared classes above are registered under (their stream categories, ``shop::order``).
NAME = "shop"


def build_domain(name: str = NAME, **config: object) -> Domain:
    """A fresh, uninitialised domain with the outbox on (memory adapters unless overridden).

    Args:
        name: the domain's name; only ``"shop"``: the classes are module-level and shared by every test.
        **config: domain config keys to set (``databases``, ``event_store``, ``server`` …).

    Raises:
        ValueError: ``name`` is not ``"shop"``. Registering the shared classes under
            another name rewrites their stream categories for every later test in the
            session (once ~80 later tests failed that way); build your own classes for
            another domain, or keep the name and vary ``config``.
    """
    if name != NAME:
        raise ValueError(
            f"build_domain(name={name!r}): the shop's classes are shared by every test and registered only under "
            f"the name {NAME!r}; another name would re-register them for every later test. Keep the default name "
            "(vary config instead) or define your own classes for another domain."
        )
    domain = Domain(name=name, root_path=str(Path(__file__).parent))
    domain.config["enable_outbox"] = True
    domain.config["server"]["default_subscription_type"] = "stream"
    for key, value in config.items():
        domain.config[key] = value
    domain.register(Order)
    domain.register(PlaceOrder, part_of=Order)
    domain.register(ShipOrder, part_of=Order)
    domain.register(OrderPlaced, part_of=Order)
    domain.register(OrderShipped, part_of=Order)
    domain.register(OrderCommands, part_of=Order)
    domain.register(Notifier, part_of=Order)
    domain.register(Fulfilment, stream_categories=[f"{name}::order"])
    return domain
