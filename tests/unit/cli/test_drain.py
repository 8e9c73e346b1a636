"""``protean drain``: runs what is pending in this process, prints the report, exits 1 on a failure."""

import json
from types import SimpleNamespace

from click.testing import CliRunner

from protean_celery.cli import protean
from tests.support.shop import SENT, PlaceOrder


def test_drain_runs_every_saga_and_reports_as_json(shop_app):
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"))
    result = CliRunner().invoke(protean, ["drain", "--json"], obj=SimpleNamespace(app=shop_app))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["tasks"] == 5 and report["failures"] == []
    assert SENT == ["o1"]


def test_a_handler_failure_exits_1_with_the_failure_in_the_report(shop_app, monkeypatch):
    from tests.support.shop import Notifier

    def fail(self, event):
        raise RuntimeError("courier down")

    monkeypatch.setitem(Notifier._handlers, "Shop.OrderShipped.v1", {fail})
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"))
    result = CliRunner().invoke(protean, ["drain", "--json"], obj=SimpleNamespace(app=shop_app))
    assert result.exit_code == 1
    [failure] = json.loads(result.output)["failures"]
    assert "protean.shop.Notifier" in json.dumps(failure) and "courier down" in json.dumps(failure)
