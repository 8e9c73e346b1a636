"""``process_and_wait``: the command's whole correlation chain runs, and its events come back in order."""

from protean_celery.testing import process_and_wait
from tests.support.shop import SENT, PlaceOrder


def test_the_command_and_everything_it_causes_run_before_it_returns(shop_app):
    with shop_app.domain.domain_context():
        command = PlaceOrder(order_id="o1")
    outcome = process_and_wait(shop_app, command)
    assert outcome.error is None
    names = [event.__class__.__name__ for event in outcome.events if not event.__class__.__name__.startswith("_")]
    assert names == ["OrderPlaced", "OrderShipped"]  # the process manager's own transitions left out
    assert SENT == ["o1"]  # the event handler at the end of the chain ran


def test_a_command_the_domain_refuses_comes_back_as_the_error(shop_app):
    outcome = process_and_wait(shop_app, object())
    assert outcome.error is not None and len(outcome.events) == 0
