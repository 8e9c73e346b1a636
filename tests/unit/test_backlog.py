"""The backlog: what waits in the outbox and the store, in each queue, and with workers; zero when all is done."""

from protean_celery.backlog import Backlog, backlog
from protean_celery.testing.drain import drain
from tests.support.shop import PlaceOrder

COMMANDS = "protean.shop.commands.Order"


def test_a_command_is_counted_unrelayed_then_queued_then_gone(shop_app):
    assert backlog(shop_app).quiescent
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"))
    before = backlog(shop_app)
    assert (before.unrelayed, before.queued[COMMANDS], before.total) == (1, 0, 1)
    shop_app.relay()
    relayed = backlog(shop_app)
    assert (relayed.unrelayed, relayed.queued[COMMANDS], relayed.in_flight) == (0, 1, 0)
    assert drain(shop_app).satisfied
    assert backlog(shop_app).quiescent


def test_the_total_adds_every_part():
    left = Backlog(unrelayed=1, queued={"a": 2, "b": 0}, in_flight=3)
    assert left.total == 6 and not left.quiescent
