"""Stream positions read from the SQL event store: an event's by its id, and what lies between two positions."""

from protean_celery.positions import stored_between, stored_position
from tests.support.shop import PlaceOrder, ShipOrder


def test_an_events_position_is_found_by_its_id_and_a_range_lists_keys_the_inbox_uses(sqlite_shop):
    app = sqlite_shop()
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
        app.domain.process(ShipOrder(order_id="o1"))  # asynchronous: stored, not handled
        store = app.domain.event_store.store
        placed, = store.read("shop::order-o1")
    assert stored_position(store, "shop::order-o1", str(placed.metadata.headers.id)) == 0
    assert stored_position(store, "shop::order-o1", "no-such-id") is None
    [(position, key, message_type, asynchronous, _)] = stored_between(store, "shop::order-o1", 0, 5, set())
    assert (position, key, message_type) == (0, str(placed.metadata.headers.id), "Shop.OrderPlaced.v1")
    commands = stored_between(store, "shop::order:command-o1", 0, 5, set())
    assert [(p, k, a) for p, k, _, a, _ in commands] == [
        (0, "shop::order:command-o1@0", False),  # processed synchronously by its caller: never relayed
        (1, "shop::order:command-o1@1", True),
    ]
    assert stored_between(store, "shop::order:command-o1", 0, 5, {"Shop.OrderShipped.v1"}) == []


def test_another_store_is_left_to_protean(shop_app):
    with shop_app.domain.domain_context():
        assert stored_between(shop_app.domain.event_store.store, "shop::order-o1", 0, 5, set()) is None
