"""``protean outbox``: rows per status, the rows themselves, and requeueing a row by id."""

import json
from types import SimpleNamespace

from click.testing import CliRunner

from protean_celery.cli import protean
from tests.support.shop import PlaceOrder


def _run(app, *args):
    result = CliRunner().invoke(protean, ["outbox", *args], obj=SimpleNamespace(app=app))
    assert result.exit_code == 0, result.output
    return result.output


def test_status_and_list_show_a_pending_row_until_it_is_relayed(shop_app):
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
    assert json.loads(_run(shop_app, "status", "--json"))["default"]["pending"] == 1
    [row] = json.loads(_run(shop_app, "list", "--json"))
    assert row["status"] == "pending"
    shop_app.relay()
    assert json.loads(_run(shop_app, "status", "--json"))["default"]["pending"] == 0
    assert json.loads(_run(shop_app, "list", "--json")) == []  # published rows are left out by default


def test_requeueing_an_unknown_row_names_the_id(shop_app):
    result = CliRunner().invoke(protean, ["outbox", "requeue", "no-such-row"], obj=SimpleNamespace(app=shop_app))
    assert result.exit_code != 0 and "no-such-row" in result.output
