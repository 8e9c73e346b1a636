"""One reader and decoder of what the relays read, for the relay and the sweep alike."""

import pytest
from protean.exceptions import DeserializationError
from protean.utils.eventing import Message

from protean_celery.outbox.rows import command_message, command_rows, outbox_message
from tests.support.shop import PlaceOrder


def _command_rows(shop_app):
    domain = shop_app.domain
    with domain.domain_context():
        domain.process(PlaceOrder(order_id="o-1"), asynchronous=True)
        category = next(iter(shop_app.topology.command_categories()))
        return command_rows(domain.event_store.store, category, -1, 10)


def test_command_rows_are_read_past_a_cursor_and_decoded_one_by_one(shop_app):
    rows = _command_rows(shop_app)
    assert len(rows) == 1
    message = command_message(rows[0])
    assert message is not None and message.metadata.headers.type.endswith("PlaceOrder.v1")
    with shop_app.domain.domain_context():
        position = int(rows[0]["global_position"])
        category = next(iter(shop_app.topology.command_categories()))
        assert command_rows(shop_app.domain.event_store.store, category, position, 10) == []


def test_a_snapshot_row_holds_no_command_and_a_broken_row_raises():
    assert command_message({"type": "SNAPSHOT", "data": {}}) is None
    with pytest.raises(DeserializationError):  # the relay parks it, the sweep skips it
        command_message({"type": "Shop.PlaceOrder.v1", "data": "not a mapping"})


def test_an_outbox_row_holds_its_message_and_the_category_it_is_routed_by(shop_app):
    rows = _command_rows(shop_app)
    message = Message.deserialize(rows[0])

    class Row:
        data = message.data
        metadata_ = message.metadata

    decoded, category = outbox_message(Row())
    assert decoded.metadata.headers.id == message.metadata.headers.id
    assert category == str(message.metadata.domain.stream_category)


def test_published_rows_are_this_domains_rows_for_its_handler_tasks_only(tmp_path):
    from datetime import timedelta

    from protean_celery.outbox.rows import domain_prefix, published_rows
    from protean_celery.testing import Testbed
    from tests.support.tenants import build_tenant, open_ticket

    north = Testbed(build_tenant("north", external_brokers={"analytics": {"provider": "inline"}}), tmp_path)
    south = Testbed(build_tenant("south"), tmp_path)  # the same database
    apps = [north.setup(), south.setup()]
    try:
        for app in apps:
            open_ticket(app.domain, f"{app.domain.name}-1")
            app.relay()
        domain = north.domain
        assert domain_prefix(domain) == "north::"
        now = domain.clock.now()
        with domain.domain_context():
            rows = published_rows(domain, "default", now - timedelta(hours=1), now, 100)
        # north's two internal rows; not its row for "analytics", not south's rows
        assert sorted((row.stream_name, row.target_broker) for row in rows) == [
            ("north::ticket-north-1", "default"), ("north::ticket-north-1", "default"),
        ]
    finally:
        north.teardown()
        south.teardown()
