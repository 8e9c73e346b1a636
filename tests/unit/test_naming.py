import pytest

from protean_celery import naming
from protean_celery.errors import TopologyError


def test_names_carry_prefix_domain_and_class():
    assert naming.task_name("protean", "orders", "OrderSummary") == "protean.orders.OrderSummary"
    assert naming.command_task_name("protean", "orders", "Order") == "protean.orders.commands.Order"
    assert naming.relay_task_name("protean", "orders", "outbox") == "protean.orders.relay.outbox"
    assert naming.relay_queue_name("protean", "orders") == "protean.orders.relay"


def test_routing_key_is_the_category_verbatim_and_all_binds_everything():
    assert naming.routing_key("orders::order:command") == "orders::order:command"
    assert naming.binding_key("orders::order") == "orders::order"
    assert naming.binding_key("$all") == "#"


@pytest.mark.parametrize("category", ["", "orders.order", "orders::*", "orders::#", "a b"])
def test_illegal_routing_keys_raise(category):
    with pytest.raises(TopologyError, match="cannot be a routing key"):
        naming.routing_key(category)


def test_handler_names_must_be_identifiers():
    with pytest.raises(TopologyError):
        naming.task_name("protean", "orders", "Not.AName")
