import pytest

from protean_celery.errors import ConfigurationError, TopologyError
from protean_celery.registry import HandlerKind, HandlerSpec, read_handlers
from protean_celery.topology import build_topology
from tests.support.shop import build_domain


@pytest.fixture(scope="module")
def domain():
    domain = build_domain()
    domain.init(traverse=False)
    return domain


@pytest.fixture(scope="module")
def topology(domain):
    return build_topology("shop", read_handlers(domain), known_types=domain._events_and_commands)


def test_one_task_queue_and_exchange_per_handler(topology):
    names = [route.task_name for route in topology.routes]
    assert names == ["protean.shop.Notifier", "protean.shop.Fulfilment", "protean.shop.commands.Order"]
    for route in topology.routes:
        assert route.queue.name == route.exchange.name == route.task_name
        assert route.exchange.type == "topic" and route.queue.durable


def test_queues_bind_the_stream_categories_verbatim(topology):
    keys = {route.task_name: [b.routing_key for b in route.queue.bindings] for route in topology.routes}
    assert keys["protean.shop.Fulfilment"] == ["shop::order"]
    assert keys["protean.shop.commands.Order"] == ["shop::order:command"]
    assert topology.command_categories() == ("shop::order:command",)


def test_targets_filter_by_category_and_type(topology):
    placed = [r.task_name for r in topology.targets("shop::order", "Shop.OrderPlaced.v1")]
    shipped = [r.task_name for r in topology.targets("shop::order", "Shop.OrderShipped.v1")]
    assert placed == ["protean.shop.Fulfilment"]
    assert shipped == ["protean.shop.Notifier", "protean.shop.Fulfilment"]
    assert topology.targets("shop::payment", "Shop.OrderPlaced.v1") == ()
    # a type the domain does not know (an upcast source, say) goes to every subscriber
    assert len(topology.targets("shop::order", "Shop.OrderPlaced.v0")) == 2


def test_dispatcher_routes_by_command_type(domain):
    dispatcher = [s for s in read_handlers(domain) if s.kind is HandlerKind.COMMAND_DISPATCHER][0]
    assert dispatcher.handler_for("Shop.PlaceOrder.v1").__name__ == "OrderCommands"
    assert dispatcher.handler_for("Shop.Unknown.v1") is None


def test_describe_lists_tasks_bindings_and_relay(topology):
    text = topology.describe()
    assert "task     protean.shop.Fulfilment  [process_manager]" in text
    assert "binding  shop::order:command" in text
    assert "protean.shop.relay.outbox" in text


def test_name_collisions_name_both_classes():
    spec = HandlerSpec(kind=HandlerKind.EVENT_HANDLER, name="Twin", path="a.Twin", categories=("x::y",))
    other = HandlerSpec(kind=HandlerKind.PROJECTOR, name="Twin", path="b.Twin", categories=("x::y",))
    with pytest.raises(TopologyError, match="a.Twin and b.Twin both map to task 'protean.x.Twin'"):
        build_topology("x", [spec, other])


def test_illegal_category_is_a_topology_error():
    spec = HandlerSpec(kind=HandlerKind.EVENT_HANDLER, name="H", path="a.H", categories=("x.y",))
    with pytest.raises(TopologyError, match="cannot be a routing key"):
        build_topology("x", [spec])


def test_uninitialised_domain_is_a_clear_error():
    with pytest.raises(ConfigurationError, match=r"call domain.init\(\) before ProteanCelery"):
        read_handlers(build_domain())  # not initialised (another name would re-register the shared classes)


def test_domain_without_handlers_is_a_clear_error():
    from protean import Domain

    empty = Domain(name="empty")
    empty.init(traverse=False)
    with pytest.raises(ConfigurationError, match="nothing for Celery to run"):
        read_handlers(empty)


def test_celery_keeps_each_handler_queue_on_its_own_exchange(shop_app):
    # Kombu drops the exchange of a queue with bindings; Celery would then bind every
    # handler queue to the default (relay) exchange as well.
    for route in shop_app.topology.routes:
        queue = shop_app.amqp.queues[route.queue.name]
        assert queue.exchange.name == route.task_name
        assert {b.exchange.name for b in queue.bindings} == {route.task_name}


def test_backfill_queues_left_out_are_those_whose_handler_queue_is_consumed():
    from protean_celery.lanes import read_lanes

    domain = build_domain()
    domain.init(traverse=False)
    lanes = read_lanes({"server": {"priority_lanes": {"enabled": True}}})
    topology = build_topology("shop", read_handlers(domain), lanes=lanes)

    assert topology.backfill_left_out(["protean.shop.Fulfilment", "protean.shop.Notifier.backfill"]) == [
        "protean.shop.Fulfilment.backfill"
    ]
    assert topology.backfill_left_out(q.name for q in topology.queues) == []  # no -Q: every queue
    assert build_topology("shop", read_handlers(domain)).backfill_left_out(["protean.shop.Fulfilment"]) == []
