"""The relay on memory adapters: what it publishes, to whom, and only once."""

from protean_celery.testing.drain import queue_depths
from tests.support.shop import PlaceOrder, ShipOrder


def _place(app, order_id="o1"):
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id=order_id))


def test_commands_reach_the_aggregate_command_task_once(shop_app):
    _place(shop_app, "o1")
    _place(shop_app, "o2")
    first = shop_app.relay()
    second = shop_app.relay()
    assert (first.commands, first.tasks) == (2, 2)
    assert (second.commands, second.tasks) == (0, 0)
    assert queue_depths(shop_app)["protean.shop.commands.Order"] == 2


def test_sync_commands_are_not_relayed(shop_app):
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
    report = shop_app.relay()
    # the sync command was handled inline; only its event is relayed
    assert report.commands == 0
    assert report.events == 1


def test_events_go_only_to_handlers_of_their_type(shop_app):
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
        shop_app.domain.process(ShipOrder(order_id="o1"), asynchronous=False)
    report = shop_app.relay()
    depths = queue_depths(shop_app)
    assert report.events == 2
    # OrderPlaced -> Fulfilment; OrderShipped -> Fulfilment and Notifier
    assert depths["protean.shop.Fulfilment"] == 2
    assert depths["protean.shop.Notifier"] == 1
    assert report.tasks == 3


def test_published_outbox_rows_are_marked_and_not_relayed_again(shop_app):
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
    shop_app.relay()
    assert shop_app.relay().events == 0
    with shop_app.domain.domain_context():
        counts = shop_app.domain._get_outbox_repo("default").count_by_status()
    assert counts.get("published") == 1
    assert shop_app.runtime.relay.pending() == 0
