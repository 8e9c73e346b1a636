"""``protean deadlines list|cancel``: what is pending, and cancelling by key (an unknown key exits 2)."""

import json
from datetime import timedelta
from types import SimpleNamespace

from click.testing import CliRunner

from protean_celery import deadlines
from protean_celery.cli import protean
from protean_celery.deadlines import DeadlineStore
from tests.support.shop import PlaceOrder


def _invoke(app, *args):
    return CliRunner().invoke(protean, ["deadlines", *args], obj=SimpleNamespace(app=app))


def test_list_shows_each_pending_deadline_and_cancel_removes_it(sqlite_shop):
    app = sqlite_shop()
    with app.domain.domain_context():
        deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=15), key="payment-o1")
    listed = _invoke(app, "list")
    assert listed.exit_code == 0 and "payment-o1" in listed.output and "Shop.PlaceOrder.v1" in listed.output
    [row] = json.loads(_invoke(app, "list", "--json").output)
    assert (row["key"], row["status"], row["data"]) == ("payment-o1", "pending", {"order_id": "o1"})

    cancelled = _invoke(app, "cancel", "payment-o1")
    assert cancelled.exit_code == 0 and "Cancelled payment-o1" in cancelled.output
    assert DeadlineStore(app.domain).list() == []


def test_cancelling_an_unknown_key_exits_2_naming_it(sqlite_shop):
    result = _invoke(sqlite_shop(), "cancel", "payment-nobody")
    assert result.exit_code == 2
    assert "'payment-nobody'" in result.output and "protean deadlines list" in result.output
    assert "Traceback" not in result.output


def test_several_keys_are_cancelled_at_once_and_an_unknown_one_is_named(sqlite_shop):
    app = sqlite_shop()
    with app.domain.domain_context():
        for key in ("a", "b"):
            deadlines.schedule(PlaceOrder(order_id=key), after=timedelta(minutes=15), key=key)
    result = _invoke(app, "cancel", "a", "nobody", "b")
    assert result.exit_code == 2 and "'nobody'" in result.output
    assert "Cancelled a" in result.output and "Cancelled b" in result.output
    assert DeadlineStore(app.domain).list() == []
