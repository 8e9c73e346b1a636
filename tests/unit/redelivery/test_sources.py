"""What the sweep reads back: relayed commands and outbox rows, once ``redeliver_after`` old, one pair per handler."""

from datetime import UTC, datetime, timedelta

import pytest

from protean_celery.outbox.relay import command_cursor_name
from protean_celery.redelivery.sources import read_commands, read_outbox
from protean_celery.testing.drain import drain
from tests.support.shop import PlaceOrder

COMMANDS = "protean.shop.commands.Order"
CATEGORY = "shop::order:command"


@pytest.fixture
def app(sqlite_shop):
    return sqlite_shop(redeliver_after=5)


def _commands(app, now, position=-1):
    with app.domain.domain_context():
        return read_commands(app.domain, app.topology, app.settings, app.runtime.cursors, CATEGORY, position, now)


def _outbox(app, now, mark=0):
    with app.domain.domain_context():
        return read_outbox(app.domain, app.topology, app.settings, "default", mark, now)


def test_a_relayed_command_is_read_once_redeliver_after_has_passed(app):
    app.process(PlaceOrder(order_id="o1"))
    assert _commands(app, datetime.now(UTC)).items == []  # younger than redeliver_after
    batch = _commands(app, datetime.now(UTC) + timedelta(seconds=60))
    assert [(item.task, item.key) for item in batch.items] == [(COMMANDS, "shop::order:command-o1@0")]
    assert batch.position == 1 and not batch.full
    assert _commands(app, datetime.now(UTC) + timedelta(seconds=60), position=batch.position).items == []


def test_a_command_the_relay_has_not_published_is_not_read(app):
    app.process(PlaceOrder(order_id="o1"))
    app.runtime.cursors.advance(command_cursor_name(CATEGORY), lambda _position: 0)  # as if not relayed yet
    assert _commands(app, datetime.now(UTC) + timedelta(seconds=60)).items == []


def test_published_outbox_rows_are_read_once_per_handler_of_their_type(app):
    app.process(PlaceOrder(order_id="o1"))
    drain(app)
    later = datetime.now(UTC) + timedelta(seconds=60)
    pairs = {(item.task, item.key) for item in _outbox(app, later).items}
    assert pairs == {
        ("protean.shop.Fulfilment", "shop::order-o1-0.1"),
        ("protean.shop.Fulfilment", "shop::order-o1-1.1"),
        ("protean.shop.Notifier", "shop::order-o1-1.1"),
    }
    assert _outbox(app, datetime.now(UTC)).items == []  # younger than redeliver_after
    assert _outbox(app, later, mark=_outbox(app, later).position).items == []
