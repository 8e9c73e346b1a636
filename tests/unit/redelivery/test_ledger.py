"""The redelivery ledger: what the sweep watches and how often it republished."""

from datetime import UTC, datetime

import sqlalchemy as sa

from protean_celery.redelivery import Ledger, Watch


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
