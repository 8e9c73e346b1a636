"""``protean topology``: the exchanges, queues and tasks the app declares."""

from types import SimpleNamespace

from click.testing import CliRunner

from protean_celery.cli import protean


def test_topology_prints_every_handler_queue(shop_app):
    result = CliRunner().invoke(protean, ["topology"], obj=SimpleNamespace(app=shop_app))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == shop_app.topology.describe().strip()
    assert all(queue.name in result.output for queue in shop_app.topology.queues)


def test_topology_lists_broker_subscribers_with_their_source(feed_app):
    result = CliRunner().invoke(protean, ["topology"], obj=SimpleNamespace(app=feed_app))
    assert result.exit_code == 0, result.output
    assert "task     protean.shop.PartnerFeed  [subscriber]" in result.output
    assert "reads    broker 'default' stream 'partner_orders'" in result.output
    as_json = CliRunner().invoke(protean, ["topology", "--json"], obj=SimpleNamespace(app=feed_app))
    assert '"stream": "partner_orders"' in as_json.output
