"""``drain()``: runs every saga to its end in-process, names a failing handler, reports what a bound left."""

import pytest

from protean_celery.testing.drain import DrainError, drain
from tests.support.shop import SENT, Order, PlaceOrder


def _command(app, order_id="o1"):
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id=order_id))


def test_drain_runs_fifty_sagas_to_the_end(shop_app):
    for number in range(50):
        _command(shop_app, f"o{number}")
    report = drain(shop_app)
    assert report.satisfied
    assert sorted(SENT) == sorted(f"o{n}" for n in range(50))
    with shop_app.domain.domain_context():
        repo = shop_app.domain.repository_for(Order)
        assert {repo.get(f"o{n}").status for n in range(50)} == {"shipped"}


def test_drain_names_the_failing_handler(shop_app, monkeypatch):
    from tests.support.shop import Notifier

    def fail(self, event):
        raise RuntimeError("courier down")

    monkeypatch.setitem(Notifier._handlers, "Shop.OrderShipped.v1", {fail})
    _command(shop_app)
    with pytest.raises(DrainError) as info:
        drain(shop_app)
    failure = info.value.failure
    assert failure.task == "protean.shop.Notifier"
    assert failure.message_type == "Shop.OrderShipped.v1"
    assert "courier down" in str(info.value)


def test_drain_ends_on_a_handler_that_always_fails(shop_app, monkeypatch):
    from tests.support.shop import Notifier

    def fail(self, event):
        raise RuntimeError("always")

    monkeypatch.setitem(Notifier._handlers, "Shop.OrderShipped.v1", {fail})
    _command(shop_app)
    report = drain(shop_app, raise_errors=False)
    assert [f.task for f in report.failures] == ["protean.shop.Notifier"]
    assert report.satisfied


def test_drain_reports_what_is_pending_when_a_bound_runs_out(shop_app):
    _command(shop_app)
    with pytest.warns(RuntimeWarning, match="drain stopped after 1 cycles"):
        report = drain(shop_app, max_cycles=1)
    assert not report.satisfied
    assert report.unrelayed == 1  # the event the command raised waits in the outbox
