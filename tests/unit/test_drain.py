"""``run_pending`` (what ``drain()`` and ``celery protean drain`` run): relay and run until nothing is left."""

import pytest

from protean_celery.drain import DrainError, run_pending
from tests.support.shop import SENT, PlaceOrder


def _place(app, order_id="o1"):
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id=order_id))


def test_everything_pending_is_run_and_the_report_says_so(shop_app):
    _place(shop_app)
    report = run_pending(shop_app)
    assert report.satisfied and (report.tasks, report.relayed) == (5, 4)  # 2 commands, 2 events (one to 2 handlers)
    assert (report.unrelayed, report.pending, report.in_flight) == (0, {}, 0)
    assert SENT == ["o1"]


def test_a_condition_ends_the_run_as_soon_as_it_holds(shop_app):
    _place(shop_app)
    report = run_pending(shop_app, until=lambda: True)
    assert report.satisfied and report.cycles == 1 and SENT == []


def test_a_failure_names_the_task_the_message_and_the_error(shop_app, monkeypatch):
    from tests.support.shop import OrderCommands

    def fail(self, command):
        raise RuntimeError("warehouse offline")

    monkeypatch.setitem(OrderCommands._handlers, "Shop.PlaceOrder.v1", {fail})
    _place(shop_app)
    with pytest.raises(DrainError, match="protean.shop.commands.Order failed on Shop.PlaceOrder.v1 o1"):
        run_pending(shop_app)


def test_signed_messages_are_relayed_and_run(sqlite_shop, tmp_path):
    from tests.support.signing import make_identity

    app = sqlite_shop(nudge=False, **make_identity(tmp_path, "app").settings())
    SENT.clear()
    _place(app, "signed")
    report = run_pending(app)
    assert report.satisfied and report.tasks == 5 and report.failures == []
    assert SENT == ["signed"]
