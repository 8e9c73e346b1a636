"""Drive ``tests.integration.lanes_app``: queue items at a priority, read back what ``Tally`` handled.

    python -m tests.integration.lanes_ops bulk 200      # 200 items at Priority.BULK, relayed
    python -m tests.integration.lanes_ops send urgent   # one item at Priority.NORMAL, relayed

The app reads its environment at import (``LANES``, ``PROTEAN_CELERY_STATE``), so
tests run these in a child process; the benchmark imports them.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import replace

from protean.core.unit_of_work import UnitOfWork
from protean.utils.processing import Priority, processing_priority

from protean_celery import storage
from tests.integration.lanes_app import TALLY, Item, app, create_tally

#: Items written per Unit of Work when queueing a backlog.
CHUNK = 250

# Relayed by ``queue`` alone: the fast path after each commit would publish a second copy of rows
# the relay claims at the same moment (the inbox absorbs it, but the queues would hold both).
app.runtime.settings = replace(app.runtime.settings, nudge=False)


def setup() -> None:
    """Create the domain's, protean-celery's and the tally's tables."""
    storage.setup(app.domain, app.runtime.state)
    create_tally()


def queue(item_ids: list[str], priority: int) -> None:
    """Record ``item_ids`` at ``priority`` and relay every outbox row to the broker."""
    with app.domain.domain_context(), processing_priority(priority):
        repo = app.domain.repository_for(Item)
        for start in range(0, len(item_ids), CHUNK):
            with UnitOfWork():
                for item_id in item_ids[start:start + CHUNK]:
                    repo.add(Item.record(item_id))
    while app.relay().events:
        pass


def handled() -> list[tuple[str, float]]:
    """Every item ``Tally`` handled, in the order it handled them, with when."""
    with sqlite3.connect(TALLY, timeout=30) as conn:
        return [(str(item_id), float(at)) for item_id, at in conn.execute("SELECT item_id, at FROM tally ORDER BY seq")]


def main(argv: list[str]) -> None:
    what, *rest = argv
    if what == "setup":
        setup()
    elif what == "bulk":
        queue([f"bulk-{n}" for n in range(int(rest[0]))], Priority.BULK)
    elif what == "send":
        queue(rest, Priority.NORMAL)
    else:
        raise SystemExit(f"unknown command {what!r}: setup, bulk N or send ID…")


if __name__ == "__main__":
    main(sys.argv[1:])
