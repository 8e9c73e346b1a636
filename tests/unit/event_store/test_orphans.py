"""Orphans: events a killed attempt left in an event store that commits apart from the aggregates.

The shop domain on SQLite with the SQL event store in a file of its own, so an
append commits before the Unit of Work. A "kill" right after the append (an
exception: the Unit of Work rolls back, the events stay) leaves the stream ahead
of the saved state; the redelivered message must complete with its events in
the stream once.
"""

import pytest
from protean.exceptions import ExpectedVersionError, TransactionError

from protean_celery import testing
from protean_celery.event_store.store import SQLEventStore
from protean_celery.tasks.handle import Outcome, run_handler
from tests.support.shop import Order, OrderPlaced, PlaceOrder, ShipOrder, build_domain

COMMANDS = "protean.shop.commands.Order"


class Killed(Exception):
    """Stands in for ``kill -9`` between the event store's commit and the Unit of Work's (Protean wraps it)."""


@pytest.fixture
def apart(tmp_path, monkeypatch):
    """The shop app with its events in ``events.db``, apart from the aggregates; ``kills`` arms the next append."""
    kills: list[str] = []
    append = SQLEventStore._write

    def append_then_die(self, stream_name, message_type, data, metadata=None, expected_version=None):
        position = append(self, stream_name, message_type, data, metadata, expected_version)
        if message_type in kills:
            kills.remove(message_type)
            raise Killed(stream_name)
        return position

    monkeypatch.setattr(SQLEventStore, "_write", append_then_die)
    domain = build_domain()
    sqlite = f"sqlite:///{tmp_path}"
    domain.config["databases"] = {"default": {"provider": "sqlite", "database_uri": f"{sqlite}/domain.db"}}
    domain.config["event_store"] = {"provider": "sqlalchemy", "database_uri": f"{sqlite}/events.db"}
    bed = testing.Testbed(domain, tmp_path, settings={"state_database_uri": f"{sqlite}/relay.db", "nudge": False},
                  keep_config=True)
    app = bed.setup()
    yield app, kills
    bed.teardown()


def _handle(app, command):
    """Place ``command`` and run it through the command handler as a task would; the command's message."""
    app.process(command)
    with app.domain.domain_context():
        message = app.domain.event_store.store.read("shop::order:command")[-1]
    return message


def _run(app, message):
    return run_handler(app.domain, app.topology.route(COMMANDS).spec, message, inbox=app.runtime.inbox)


def _events(app, order_id):
    with app.domain.domain_context():
        return [(m.metadata.headers.type, m.metadata.headers.id)
                for m in app.domain.event_store.store.read(f"shop::order-{order_id}")]


def _outbox_ids(app):
    with app.domain.domain_context():
        return sorted(row.message_id for row in app.domain._get_outbox_repo("default")._dao.query.all().items)


def test_a_new_aggregate_reuses_the_event_its_killed_attempt_left(apart):
    app, kills = apart
    message = _handle(app, PlaceOrder(order_id="o1"))
    kills.append(OrderPlaced.__type__)
    with pytest.raises(TransactionError, match="Killed"):
        _run(app, message)
    orphaned = _events(app, "o1")
    assert [kind for kind, _id in orphaned] == [OrderPlaced.__type__]  # the stream is ahead of the saved state

    assert _run(app, message) is Outcome.HANDLED  # it conflicted with the orphan until dead-lettered before
    assert _events(app, "o1") == orphaned
    assert _outbox_ids(app) == [orphaned[0][1]]  # published once, under the stored event's id
    with app.domain.domain_context():
        assert app.domain.repository_for(Order).get("o1").status == "placed"


def test_a_loaded_aggregate_reuses_the_event_its_killed_attempt_left(apart):
    app, kills = apart
    assert _run(app, _handle(app, PlaceOrder(order_id="o2"))) is Outcome.HANDLED
    ship = _handle(app, ShipOrder(order_id="o2"))
    kills.append("Shop.OrderShipped.v1")
    with pytest.raises(TransactionError, match="Killed"):
        _run(app, ship)
    orphaned = _events(app, "o2")

    assert _run(app, ship) is Outcome.HANDLED  # it stored the event a second time before
    assert _events(app, "o2") == orphaned
    assert [kind for kind, _id in orphaned] == [OrderPlaced.__type__, "Shop.OrderShipped.v1"]
    assert _outbox_ids(app) == sorted(event_id for _kind, event_id in orphaned)
    with app.domain.domain_context():
        assert app.domain.repository_for(Order).get("o2").status == "shipped"


def test_an_event_another_message_left_in_the_way_still_conflicts(apart):
    app, _kills = apart
    first = _handle(app, PlaceOrder(order_id="o3"))
    with app.domain.domain_context():  # written outside any handler: not this message's
        order = Order(order_id="o3")
        order.place()
        app.domain.event_store.store.append(order._events[0])
    with pytest.raises(ExpectedVersionError):
        _run(app, first)
    with app.domain.domain_context():
        assert app.domain.repository_for(Order).query.all().items == []
