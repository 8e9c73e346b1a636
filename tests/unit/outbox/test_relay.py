"""The relay on memory adapters: what it publishes, to whom, and only once."""

from protean_celery.testing.drain import queue_depths
from tests.support.shop import PlaceOrder, ShipOrder


def _place(app, order_id="o1"):
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id=order_id))


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


def _limit(app, size):
    from dataclasses import replace

    app.runtime.relay.settings = replace(app.settings, max_payload_bytes=size)


def test_an_outbox_row_above_the_size_limit_is_marked_failed_not_published(shop_app):
    _limit(shop_app, 100)
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
    report = shop_app.relay()
    assert (report.events, report.failed) == (0, 1)
    assert queue_depths(shop_app)["protean.shop.Fulfilment"] == 0
    with shop_app.domain.domain_context():
        repo = shop_app.domain._get_outbox_repo("default")
        assert repo.count_by_status().get("failed") == 1
        row = repo._dao.query.all().items[0]
    assert "max_payload_bytes = 100" in row.last_error["message"]


def test_an_unreachable_broker_costs_an_outbox_row_no_attempt(shop_app, monkeypatch):
    import pytest
    from kombu.exceptions import OperationalError

    from protean_celery.errors import RelayError

    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)

    def down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    relay = shop_app.runtime.relay
    monkeypatch.setattr(relay.celery, "send_task", down)
    for _ in range(5):  # more outages than [outbox.retry] max_attempts
        with pytest.raises(RelayError, match="broker is unreachable"):
            relay.run(commands=False)
    with shop_app.domain.domain_context():
        row = shop_app.domain._get_outbox_repo("default")._dao.query.all().items[0]
    assert (row.status, row.retry_count, row.locked_by) == ("pending", 0, None)
    monkeypatch.undo()
    assert relay.run(commands=False).events == 1
