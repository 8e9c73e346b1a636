"""``protean dlq``: list, inspect, replay and purge dead letters, by id or filter."""

import json
from types import SimpleNamespace

from click.testing import CliRunner

from protean_celery.cli import protean
from protean_celery.testing.drain import queue_depths

NOTIFIER = "protean.shop.Notifier"


def _run(app, *args):
    result = CliRunner().invoke(protean, ["dlq", *args], obj=SimpleNamespace(app=app))
    assert result.exit_code == 0, result.output
    return result.output


def _park(app, task=NOTIFIER, message_id="m1"):
    payload = {"data": {}, "metadata": {"headers": {"id": message_id, "type": "Shop.OrderShipped.v1"}}}
    return app.runtime.dead_letters.park(task, payload, RuntimeError("courier down"))


def test_list_and_inspect_show_the_entry_and_its_error(shop_app):
    entry_id = _park(shop_app)
    assert entry_id in _run(shop_app, "list") and NOTIFIER in _run(shop_app, "list", "--task", NOTIFIER)
    assert entry_id not in _run(shop_app, "list", "--task", "protean.shop.Fulfilment")
    shown = json.loads(_run(shop_app, "inspect", entry_id, "--json"))
    assert shown["task"] == NOTIFIER and "courier down" in shown["error"]


def test_replay_republishes_to_the_handler_queue_and_forgets_the_entry(shop_app):
    entry_id = _park(shop_app)
    _run(shop_app, "replay", entry_id)
    assert shop_app.runtime.dead_letters.list() == []
    assert queue_depths(shop_app)[NOTIFIER] == 1


def test_purge_by_task_keeps_the_others(shop_app):
    _park(shop_app, message_id="m1")
    kept = _park(shop_app, task="protean.shop.Fulfilment", message_id="m2")
    _run(shop_app, "purge", "--task", NOTIFIER, "--yes")
    assert [entry.id for entry in shop_app.runtime.dead_letters.list()] == [kept]


def test_an_unknown_id_names_where_the_ids_are(shop_app):
    result = CliRunner().invoke(protean, ["dlq", "inspect", "no-such-id"], obj=SimpleNamespace(app=shop_app))
    assert result.exit_code != 0 and "protean dlq list" in result.output


def test_replay_puts_a_subscriber_s_dead_letter_back_on_its_queue(feed_app):
    from protean_celery.subscribers.delivery import wrap

    envelope = wrap("default", "partner_orders", "1-0", {"ref": "r1"})
    entry_id = feed_app.runtime.dead_letters.park("protean.shop.PartnerFeed", envelope, RuntimeError("down"))
    assert f"Replayed {entry_id} as task replay-{entry_id}." in _run(feed_app, "replay", entry_id)
    assert feed_app.runtime.dead_letters.list() == []
    assert "Replayed 0 dead letter(s)." in _run(feed_app, "replay-all")
