"""The `orders` example domain, run by Protean alone (no Celery).

Each test loads the ``workers/orders/domain`` package afresh under a private
name, so it gets its own ``Domain``, element classes and in-memory adapters,
and never shares an initialised domain with tests that import
``workers.orders.domain`` for Celery. The toml's SQLite paths are replaced
before ``init`` (nothing touches ``.state``).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from protean.exceptions import ObjectNotFoundError

DOMAIN_PACKAGE = Path(__file__).resolve().parents[3] / "workers" / "orders" / "domain"
_serial = itertools.count()

MEMORY = {
    "databases": {"default": {"provider": "memory"}, "memory": {"provider": "memory"}},
    "event_store": {"provider": "memory"},
    "enable_outbox": False,
    "server": {"default_subscription_type": "event_store"},
}
SYNC = {**MEMORY, "command_processing": "sync", "event_processing": "sync"}
ASYNC = {**MEMORY, "command_processing": "async", "event_processing": "async"}


def load_orders() -> ModuleType:
    """Execute the domain package as a new one: a new Domain with its toml config."""
    name = f"_orders_domain_{next(_serial)}"
    spec = importlib.util.spec_from_file_location(
        name, DOMAIN_PACKAGE / "__init__.py", submodule_search_locations=[str(DOMAIN_PACKAGE)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def make_orders() -> Iterator[Callable[[dict[str, Any]], ModuleType]]:
    """Load, override config, ``init(traverse=False)`` and enter a context."""
    opened: list[tuple[ModuleType, Any]] = []

    def make(overrides: dict[str, Any]) -> ModuleType:
        orders = load_orders()
        domain = orders.domain
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(domain.config.get(key), dict):
                domain.config[key] = {**domain.config[key], **value}
            else:
                domain.config[key] = value
        domain.init(traverse=False)
        context = domain.domain_context()
        context.push()
        opened.append((orders, context))
        return orders

    yield make
    for orders, context in reversed(opened):
        context.pop()
        orders.domain.close()
        for module in [m for m in sys.modules if m == orders.__name__ or m.startswith(orders.__name__ + ".")]:
            sys.modules.pop(module, None)


@pytest.fixture
def orders(make_orders: Callable[[dict[str, Any]], ModuleType]) -> ModuleType:
    return make_orders(SYNC)


def place(orders: ModuleType, order_id: str, declined: bool = False) -> None:
    orders.domain.process(
        orders.PlaceOrder(
            order_id=order_id,
            customer="ada",
            amount=42.5,
            sku="SKU-1",
            quantity=2,
            declined=declined,
        )
    )


def get(orders: ModuleType, cls: type, order_id: str) -> Any:
    return orders.domain.repository_for(cls).get(order_id)


def saga_transitions(orders: ModuleType, order_id: str) -> list[Any]:
    """The PM's transition events, from its own event-store stream."""
    stream = f"orders::order_fulfillment-{order_id}"
    return [m.to_domain_object() for m in orders.domain.event_store.store.read(stream)]


def stream_types(orders: ModuleType, stream: str) -> list[str]:
    messages = orders.domain.event_store.store.read(stream)
    return [m.metadata.headers.type for m in messages]


# --------------------------------------------------------------------------
# Configuration and registration
# --------------------------------------------------------------------------
def test_domain_toml_is_loaded_with_state_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PROTEAN_CELERY_STATE", raising=False)
    config = load_orders().domain.config
    assert config["databases"]["default"] == {
        "provider": "sqlite",
        "database_uri": "sqlite:///.state/orders.db",
    }
    assert config["event_store"] == {
        "provider": "sqlalchemy",
        "database_uri": "sqlite:///.state/orders.db",
    }
    assert config["enable_outbox"] is True
    assert config["server"]["default_subscription_type"] == "stream"
    assert config["command_processing"] == config["event_processing"] == "async"
    assert config["brokers"]["default"] == {"provider": "inline"}

    monkeypatch.setenv("PROTEAN_CELERY_STATE", str(tmp_path))
    config = load_orders().domain.config
    assert (
        config["databases"]["default"]["database_uri"]
        == f"sqlite:///{tmp_path}/orders.db"
    )
    assert config["event_store"]["database_uri"].startswith("sqlite:////")


def test_production_overlay_points_everything_at_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROTEAN_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@db:5432/orders")
    config = load_orders().domain.config
    assert config["databases"]["default"] == {
        "provider": "postgresql",
        "database_uri": "postgresql://app:pw@db:5432/orders",
    }
    assert config["event_store"] == {
        "provider": "sqlalchemy",
        "database_uri": "postgresql://app:pw@db:5432/orders",
    }


def test_stream_categories_and_types(orders: ModuleType) -> None:
    domain = orders.domain
    assert domain.normalized_name == "orders"
    assert orders.Order.meta_.stream_category == "orders::order"
    assert orders.OrderCommandHandler.meta_.stream_category == "orders::order:command"
    assert orders.CourierSimulator.meta_.stream_category == "orders::shipment"
    pm = orders.OrderFulfillment.meta_
    assert pm.stream_category == "orders::order_fulfillment"
    assert pm.stream_categories == [
        "orders::order",
        "orders::inventory",
        "orders::payment",
        "orders::shipment",
    ]
    assert orders.OrderSummaryProjector.meta_.stream_categories == pm.stream_categories
    assert orders.PlaceOrder.__type__ == "Orders.PlaceOrder.v1"
    assert orders.ShipmentDelivered.__type__ == "Orders.ShipmentDelivered.v1"


# --------------------------------------------------------------------------
# The saga, synchronously
# --------------------------------------------------------------------------
def test_order_runs_to_completion(orders: ModuleType) -> None:
    place(orders, "o-1")

    assert get(orders, orders.Order, "o-1").status == "COMPLETED"
    assert get(orders, orders.Inventory, "o-1").status == "RESERVED"
    assert get(orders, orders.Payment, "o-1").status == "CONFIRMED"
    assert get(orders, orders.Shipment, "o-1").status == "DELIVERED"
    assert get(orders, orders.CourierCall, "o-1").attempts == 1

    summary = get(orders, orders.OrderSummary, "o-1")
    assert (summary.status, summary.payment_status, summary.shipment_status) == (
        "COMPLETED",
        "CONFIRMED",
        "DELIVERED",
    )
    assert (summary.customer, summary.amount, summary.steps) == ("ada", 42.5, 6)

    transitions = saga_transitions(orders, "o-1")
    assert [t.state["status"] for t in transitions] == [
        "reserving",
        "paying",
        "shipping",
        "completed",
    ]
    assert [t.is_complete for t in transitions] == [False, False, False, True]
    assert transitions[-1].state == {
        "order_id": "o-1",
        "amount": 42.5,
        "declined": False,
        "unpaid": False,
        "status": "completed",
    }


def test_declined_payment_is_compensated(orders: ModuleType) -> None:
    place(orders, "o-2", declined=True)

    assert get(orders, orders.Order, "o-2").status == "CANCELLED"
    assert get(orders, orders.Inventory, "o-2").status == "RELEASED"
    assert get(orders, orders.Payment, "o-2").status == "DECLINED"
    assert stream_types(orders, "orders::shipment-o-2") == []
    with pytest.raises(ObjectNotFoundError):
        get(orders, orders.CourierCall, "o-2")

    summary = get(orders, orders.OrderSummary, "o-2")
    assert (summary.status, summary.inventory_status, summary.payment_status) == (
        "CANCELLED",
        "RELEASED",
        "DECLINED",
    )

    transitions = saga_transitions(orders, "o-2")
    assert [t.handler_name for t in transitions] == [
        "on_order_placed",
        "on_inventory_reserved",
        "on_payment_declined",
    ]
    assert transitions[-1].is_complete is True
    assert transitions[-1].state["status"] == "compensated"
    assert transitions[-1].state["declined"] is True


def test_saga_hears_events_from_every_aggregate_category(orders: ModuleType) -> None:
    place(orders, "o-3")

    # handler method name -> stream category of the event it handles
    pm = orders.OrderFulfillment
    category_of = {
        method.__name__: orders.domain._events_and_commands[
            type_string
        ].meta_.part_of.meta_.stream_category
        for type_string, methods in pm._handlers.items()
        for method in methods
    }
    heard = {category_of[t.handler_name] for t in saga_transitions(orders, "o-3")}
    assert len(heard) >= 3
    assert heard == {
        "orders::order",
        "orders::inventory",
        "orders::payment",
        "orders::shipment",
    }


def test_repeated_commands_change_nothing(orders: ModuleType) -> None:
    place(orders, "o-4")
    streams = [
        f"orders::{c}-o-4" for c in ("order", "inventory", "payment", "shipment")
    ]
    before = {s: stream_types(orders, s) for s in streams}

    place(orders, "o-4")
    for command in (
        orders.ReserveInventory(order_id="o-4", sku="SKU-1", quantity=2),
        orders.RequestPayment(order_id="o-4", amount=42.5),
        orders.CreateShipment(order_id="o-4"),
        orders.DeliverShipment(order_id="o-4"),
        orders.CompleteOrder(order_id="o-4"),
        orders.CancelOrder(order_id="o-4", reason="too late"),
    ):
        orders.domain.process(command)

    assert {s: stream_types(orders, s) for s in streams} == before
    assert get(orders, orders.Order, "o-4").status == "COMPLETED"
    assert get(orders, orders.CourierCall, "o-4").attempts == 1
    assert len(saga_transitions(orders, "o-4")) == 4


# --------------------------------------------------------------------------
# The saga, asynchronously, on Protean's own engine (what Celery replaces)
# --------------------------------------------------------------------------
def test_async_chain_completes_on_protean_engine(
    make_orders: Callable[[dict[str, Any]], ModuleType],
) -> None:
    from protean.testing import drain

    orders = make_orders(ASYNC)
    place(orders, "o-5")
    assert stream_types(orders, "orders::order-o-5") == []  # nothing ran yet

    def saga_done() -> bool:
        return any(t.is_complete for t in saga_transitions(orders, "o-5"))

    drain(orders.domain, until=saga_done, max_cycles=10)

    assert get(orders, orders.Order, "o-5").status == "COMPLETED"
    assert get(orders, orders.CourierCall, "o-5").attempts == 1
    assert get(orders, orders.OrderSummary, "o-5").status == "COMPLETED"
    assert saga_transitions(orders, "o-5")[-1].state["status"] == "completed"
