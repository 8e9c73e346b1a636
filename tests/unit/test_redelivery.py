"""The redelivery sweep's pieces: pair lookups, the ledger, what the probe reports."""

from datetime import UTC, datetime

import sqlalchemy as sa

from protean_celery.broker import Sighting
from protean_celery.deadletter import DeadLetters
from protean_celery.redelivery import Ledger, Watch


def test_dead_letters_say_which_task_and_message_pairs_they_hold(tmp_path):
    store = DeadLetters(sa.create_engine(f"sqlite:///{tmp_path}/dlq.db"))
    store.setup()
    payload = {"data": {}, "metadata": {"headers": {"id": "m1", "type": "T.v1"}}}
    store.park("task.a", payload, RuntimeError("boom"))
    assert store.parked([("task.a", "m1"), ("task.b", "m1"), ("task.a", "m2")]) == {("task.a", "m1")}
    assert store.parked([]) == set()


def test_the_ledger_counts_republications_and_forgets_settled_entries(tmp_path):
    ledger = Ledger(sa.create_engine(f"sqlite:///{tmp_path}/state.db"))
    ledger.setup()
    now = datetime.now(UTC)
    first = Watch("task.a", "m1", "orders::order", {"p": 1}, now)
    second = Watch("task.b", "m1", "orders::order", {"p": 1}, now)
    ledger.watch([first, first])  # watching twice keeps one entry
    ledger.redelivered(second, now)  # a new entry, republished once
    ledger.redelivered(second, now)
    entries = {(item.task, item.key): item.redeliveries for item in ledger.all()}
    assert entries == {("task.a", "m1"): 0, ("task.b", "m1"): 2}
    ledger.forget([first])
    assert ledger.count() == 1 and ledger.all()[0].relayed_at.tzinfo is not None


def test_a_queue_the_probe_could_not_read_counts_as_holding_every_task():
    sighting = Sighting(found={"t1"}, unsure={"q2"})
    assert sighting.present("q1", "t1") and not sighting.present("q1", "t2")
    assert sighting.present("q2", "anything")
