"""Runtime.replay of a command the command relay parked: published once its cause is fixed, refused before."""

from dataclasses import replace

import pytest

from protean_celery.errors import DeadLetterError
from protean_celery.testing.drain import drain, queue_depths
from tests.support.shop import Order, PlaceOrder

RELAY = "protean.shop.relay.commands"
COMMANDS = "protean.shop.commands.Order"


def _limit(app, size):
    app.runtime.relay.settings = replace(app.settings, max_payload_bytes=size)


def _park_a_large_command(app):
    _limit(app, 100)
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o1"))
    assert app.relay().failed == 1
    [entry] = app.runtime.dead_letters.list(task=RELAY)
    return entry


def test_a_parked_command_still_too_large_stays_parked_with_the_fix_named(shop_app):
    entry = _park_a_large_command(shop_app)
    with pytest.raises(DeadLetterError, match="max_payload_bytes"):
        shop_app.runtime.replay(entry.id, shop_app)
    assert [e.id for e in shop_app.runtime.dead_letters.list()] == [entry.id]
    assert queue_depths(shop_app)[COMMANDS] == 0


def test_a_parked_command_is_published_to_its_handler_once_the_limit_is_raised(shop_app):
    entry = _park_a_large_command(shop_app)
    _limit(shop_app, 1_048_576)
    shop_app.runtime.replay(entry.id, shop_app)
    assert shop_app.runtime.dead_letters.list() == []
    assert queue_depths(shop_app)[COMMANDS] == 1
    drain(shop_app)
    with shop_app.domain.domain_context():
        assert shop_app.domain.repository_for(Order).get("o1").order_id == "o1"


def test_a_parked_row_that_is_not_a_command_cannot_be_replayed(shop_app):
    error = ValueError("row without metadata")
    entry_id = shop_app.runtime.dead_letters.park(RELAY, {"type": "Shop.PlaceOrder.v1", "data": {}}, error)
    with pytest.raises(DeadLetterError, match="purge it and send the command again"):
        shop_app.runtime.replay(entry_id, shop_app)
    assert len(shop_app.runtime.dead_letters.list()) == 1
