"""The handler specs read from a domain: one per handler, one command dispatcher per aggregate, in a fixed order."""

from protean_celery.registry import HandlerKind, read_handlers
from tests.support.shop import Fulfilment, Notifier, OrderCommands, build_domain


def _specs():
    domain = build_domain()
    domain.init(traverse=False)
    return {spec.name: spec for spec in read_handlers(domain)}


def test_each_handler_and_each_aggregates_commands_get_a_spec():
    specs = _specs()
    assert {name: spec.kind for name, spec in specs.items()} == {
        "Notifier": HandlerKind.EVENT_HANDLER,
        "Fulfilment": HandlerKind.PROCESS_MANAGER,
        "Order": HandlerKind.COMMAND_DISPATCHER,
    }
    assert specs["Notifier"].categories == ("shop::order",) and specs["Notifier"].handler is Notifier
    assert specs["Fulfilment"].handler is Fulfilment


def test_a_dispatcher_routes_by_command_type_and_a_handler_by_its_types():
    specs = _specs()
    order = specs["Order"]
    assert order.handler_for("Shop.PlaceOrder.v1") is OrderCommands
    assert order.handler_for("Shop.Unknown.v1") is None
    notifier = specs["Notifier"]
    assert notifier.accepts("Shop.OrderShipped.v1") and not notifier.accepts("Shop.OrderPlaced.v1")


def test_the_order_does_not_depend_on_registration():
    first = build_domain()
    first.init(traverse=False)
    second = build_domain()
    second.init(traverse=False)
    assert [s.path for s in read_handlers(first)] == [s.path for s in read_handlers(second)]
