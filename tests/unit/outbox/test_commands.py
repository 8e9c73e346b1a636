"""The command relay: each asynchronous command reaches its command task once; what it cannot publish is parked."""

from dataclasses import replace

from protean_celery.testing.drain import queue_depths
from tests.support.shop import PlaceOrder


def _place(app, order_id="o1"):
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id=order_id))


def _limit(app, size):
    app.runtime.relay.settings = replace(app.settings, max_payload_bytes=size)


def test_commands_reach_the_aggregate_command_task_once(shop_app):
    _place(shop_app, "o1")
    _place(shop_app, "o2")
    first = shop_app.relay()
    second = shop_app.relay()
    assert (first.commands, first.tasks) == (2, 2)
    assert (second.commands, second.tasks) == (0, 0)
    assert queue_depths(shop_app)["protean.shop.commands.Order"] == 2


def test_sync_commands_are_not_relayed(shop_app):
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
    report = shop_app.relay()
    # the sync command was handled inline; only its event is relayed
    assert report.commands == 0
    assert report.events == 1


def test_a_command_above_the_size_limit_is_dead_lettered_and_the_cursor_moves_on(shop_app):
    _limit(shop_app, 100)
    _place(shop_app, "o1")
    report = shop_app.relay()
    assert (report.commands, report.failed) == (0, 1)
    assert shop_app.relay().failed == 0  # not read again
    [entry] = shop_app.runtime.dead_letters.list()
    assert entry.task == "protean.shop.relay.commands"
    assert entry.error.startswith("PayloadTooLarge: relay of Shop.PlaceOrder.v1")
    assert entry.message_type == "Shop.PlaceOrder.v1"


def test_a_command_that_cannot_be_decoded_is_dead_lettered_not_skipped(shop_app, monkeypatch):
    store = shop_app.domain.event_store.store
    read = store._read

    def with_a_bad_row(stream, *args, **kwargs):
        rows = read(stream, *args, **kwargs)
        if rows and stream == "shop::order:command":  # a row without metadata, as a corrupt store might hold
            rows = [{"type": "Shop.PlaceOrder.v1", "data": {"order_id": "o9"}, "global_position": 0}, *rows[1:]]
        return rows

    monkeypatch.setattr(store, "_read", with_a_bad_row)
    _place(shop_app, "o1")
    report = shop_app.relay()
    assert (report.commands, report.failed) == (0, 1)
    [entry] = shop_app.runtime.dead_letters.list(task="protean.shop.relay.commands")
    assert entry.payload["data"] == {"order_id": "o9"}
    assert "metadata" in entry.error


def test_a_command_a_continuing_task_already_handled_is_not_published_again(sqlite_app):
    from protean_celery.envelope import message_key

    runtime = sqlite_app.runtime
    assert runtime.relay.markers is not None  # tasks continue in-process with commands on this database
    _place(sqlite_app, "o1")  # appended; the relay has not run (no nudge)
    with sqlite_app.domain.domain_context():
        command = sqlite_app.domain.event_store.store.read("shop::order:command")[0]
    route = sqlite_app.topology.route("protean.shop.commands.Order")
    runtime.inbox.mark(message_key(command), route.spec.path)  # as a continuing task's Unit of Work does

    report = sqlite_app.relay()

    assert report.tasks == 0 and queue_depths(sqlite_app)["protean.shop.commands.Order"] == 0
    assert sqlite_app.relay().moved == 0  # the cursor moved past it


def test_without_markers_the_same_command_is_published(sqlite_app):
    sqlite_app.runtime.relay.markers = None  # continuation off
    _place(sqlite_app, "o1")
    assert sqlite_app.relay().tasks == 1
