"""The sweep on SQLite files: settles what was handled, watches what is on its way, republishes what vanished.

The broker's search is replaced by a stand-in (the adapters are tested in tests/unit/broker); the
sweep's decisions, the ledger, the inbox markers and the dead letters are real.
"""

from datetime import UTC, datetime, timedelta

import pytest

from protean_celery.broker import Sighting
from protean_celery.redelivery import sweep
from protean_celery.testing.drain import drain, queue_depths
from tests.support.shop import PlaceOrder

COMMANDS = "protean.shop.commands.Order"


class StandInBroker:
    """Finds the task ids in ``found`` and nothing else; holds nothing to reclaim."""

    def __init__(self):
        self.found = set()

    def reclaim(self, older_than, **_):
        return []

    def locate(self, wanted, **_):
        return Sighting(found=self.found & set().union(*wanted.values()), workers=1)


@pytest.fixture
def broker(monkeypatch):
    stand_in = StandInBroker()
    monkeypatch.setattr(sweep, "broker_for", lambda celery: stand_in)
    return stand_in


@pytest.fixture
def app(sqlite_shop):
    return sqlite_shop(redeliver_after=5, redelivery_attempts=1)


def _later():
    return datetime.now(UTC) + timedelta(seconds=60)


def _lose_every_message(app):
    with app.connection_for_write() as connection:
        for queue in app.topology.queues:
            queue.bind(connection.default_channel).purge()


def test_handled_messages_are_settled_and_nothing_is_republished(app, broker):
    app.process(PlaceOrder(order_id="o1"))
    assert drain(app).satisfied
    report = app.runtime.sweep.run(now=_later())
    assert report.checked == 5 and (report.redelivered, report.watched) == (0, 0)
    assert app.runtime.ledger.count() == 0


def test_a_copy_still_in_the_broker_is_watched_then_settled_once_handled(app, broker):
    app.process(PlaceOrder(order_id="o1"))
    broker.found = {task_id for task_id in _task_ids(app)}
    assert app.runtime.sweep.run(now=_later()).watched == 1
    assert [(item.task, item.redeliveries) for item in app.runtime.ledger.all()] == [(COMMANDS, 0)]
    drain(app)
    assert app.runtime.sweep.run(now=_later()).settled == 1
    assert app.runtime.ledger.count() == 0


def test_a_vanished_command_is_republished_then_dead_lettered_as_lost(app, broker):
    app.process(PlaceOrder(order_id="o1"))
    _lose_every_message(app)
    assert app.runtime.sweep.run(now=_later()).redelivered == 1
    assert queue_depths(app)[COMMANDS] == 1  # the copy, with its usual task id
    _lose_every_message(app)
    assert app.runtime.sweep.run(now=_later()).dead_lettered == 1  # redelivery_attempts = 1
    [entry] = app.runtime.dead_letters.list(task=COMMANDS)
    assert entry.error.startswith("MessageLost") and entry.message_id == "shop::order:command-o1@0"
    assert app.runtime.ledger.count() == 0 and queue_depths(app)[COMMANDS] == 0


def test_a_republished_copy_that_is_handled_settles_the_message(app, broker):
    app.process(PlaceOrder(order_id="o1"))
    _lose_every_message(app)
    assert app.runtime.sweep.run(now=_later()).redelivered == 1
    assert drain(app).satisfied
    report = app.runtime.sweep.run(now=_later())
    assert (report.settled, report.redelivered, report.dead_lettered) == (1, 0, 0)
    assert app.runtime.dead_letters.list() == []


def test_the_sweep_is_off_without_a_sweep_interval(sqlite_shop, broker):
    app = sqlite_shop(sweep_interval=0)
    app.process(PlaceOrder(order_id="o1"))
    _lose_every_message(app)
    assert not app.runtime.sweep.enabled
    assert app.runtime.sweep.run(now=_later()).checked == 0


def _task_ids(app):
    from protean_celery.envelope import task_id

    return {task_id(COMMANDS, "shop::order:command-o1@0")}


def test_with_priority_lanes_a_copy_in_the_backfill_queue_counts_as_on_its_way(tmp_path, monkeypatch):
    from protean_celery.testing import Testbed
    from tests.support.shop import build_domain

    class BackfillOnly(StandInBroker):
        def locate(self, wanted, **_):  # every task id, but only where it is wanted in a backfill queue
            return Sighting(found=set().union(*(ids for queue, ids in wanted.items() if queue.endswith(".backfill"))))

    monkeypatch.setattr(sweep, "broker_for", lambda celery: BackfillOnly())
    lanes = {"default_subscription_type": "stream", "priority_lanes": {"enabled": True}}
    bed = Testbed(build_domain(server=lanes), tmp_path, settings={"redeliver_after": 5, "redelivery_attempts": 1})
    app = bed.setup()
    try:
        app.process(PlaceOrder(order_id="o1"))
        report = app.runtime.sweep.run(now=_later())
        assert (report.watched, report.redelivered) == (1, 0)
    finally:
        bed.teardown()
