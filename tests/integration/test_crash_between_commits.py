"""Message DB: a pool child killed between the event store's commit and the Unit of Work's.

Protean appends a handler's events to Message DB, where they commit at once,
before the aggregate rows, outbox rows and inbox marker commit in the
aggregates' database. The app (``orphans_app``) kills the child right after the
first append of each listed event type, so each of those messages is redelivered
with its events already in the stream: a new aggregate's (``OrderPlaced``,
``InventoryReserved``: the append conflicts with the stream's version) and a
loaded aggregate's (``OrderCompleted``, ``ShipmentDelivered``: the append would
store the event twice) and the saga's (a process manager's transition, recognised
by its causation before the handler runs again). Each message must complete once, with its events in the
stream once and published once, and nothing dead-lettered: through a real
``celery worker``, with the outbox on and off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from protean_celery.deadletter import DeadLetters
from protean_celery.testing.processes import BeatProcess, WorkerProcess
from tests.integration.orders import ROOT, rows

pytestmark = pytest.mark.integration

APP = "tests.integration.orphans_app"
ORDERS = 4
CRASHES = ["OrderPlaced", "InventoryReserved", "OrderCompleted", "ShipmentDelivered", "_OrderFulfillmentTransition"]

_API = """
import sys
from tests.integration.orphans_app import app
from workers.orders.domain import PlaceOrder, domain
from protean_celery import storage

storage.setup(app.domain, app.runtime.state)
if sys.argv[1] == "setup":
    raise SystemExit(0)
with domain.domain_context():
    for number in range(int(sys.argv[1])):
        domain.process(PlaceOrder(order_id=f"orphan-{number}", customer="c", amount=10.0, sku="s", quantity=1,
                                  declined=number == 0), asynchronous=True)
"""


@pytest.fixture(params=["outbox", "outbox off"])
def crashed_run(request, redis_server, postgres_server, tmp_path):
    from protean_celery.testing.message_db import install_message_db

    suffix = "on" if request.param == "outbox" else "off"
    url = postgres_server.create_database(f"orphans_{suffix}")
    store_url = postgres_server.create_database(f"orphans_{suffix}_mdb")
    install_message_db(store_url)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "CELERY_BROKER_URL": redis_server.url, "PROTEAN_NO_AUTO_LOGGING": "1",
           "PROTEAN_ENV": "messagedb", "DATABASE_URL": url, "MESSAGE_DB_URL": store_url,
           "ORPHANS_OUTBOX": "1" if request.param == "outbox" else "0", "ORPHANS_MARKS": str(marks)}
    subprocess.run([sys.executable, "-c", _API, "setup"], cwd=ROOT, env=env, check=True, timeout=120)
    crashing = {**env, "ORPHANS_CRASH_AFTER": ",".join(CRASHES)}
    worker = WorkerProcess(APP, concurrency=2, env=crashing, log_path=tmp_path / "worker.log", cwd=ROOT).start()
    beat = BeatProcess(APP, env=env, log_path=tmp_path / "beat.log", cwd=ROOT).start()
    engine, store = sa.create_engine(url), sa.create_engine(store_url)
    try:
        subprocess.run([sys.executable, "-c", _API, str(ORDERS)], cwd=ROOT, env=env, check=True, timeout=120)
        yield engine, store, DeadLetters(engine), marks
    finally:
        beat.stop()
        worker.stop()
        engine.dispose()
        store.dispose()


def _settled(engine: sa.Engine, parked: DeadLetters, timeout: float = 180.0) -> dict[str, int]:
    """Order statuses once every saga ended and the projection caught up (or a message was dead-lettered)."""
    deadline = time.monotonic() + timeout
    statuses: dict[str, int] = {}
    while time.monotonic() < deadline and not parked.list():
        statuses = dict(rows(engine, 'SELECT status, count(*) FROM "order" GROUP BY status'))
        summaries = rows(engine, "SELECT count(*) FROM order_summary WHERE status IN ('COMPLETED', 'CANCELLED')")
        if statuses.get("COMPLETED", 0) + statuses.get("CANCELLED", 0) >= ORDERS and summaries[0][0] >= ORDERS:
            break
        time.sleep(0.2)
    return statuses


def test_a_message_killed_between_the_two_commits_completes_once(crashed_run):
    engine, store, parked, marks = crashed_run
    statuses = _settled(engine, parked)
    assert [(letter.task, letter.error) for letter in parked.list()] == []
    assert statuses == {"COMPLETED": ORDERS - 1, "CANCELLED": 1}
    assert sorted(path.name for path in marks.iterdir()) == sorted(f"crashed-{name}" for name in CRASHES)
    # Every event of the aggregates is in its stream once (no orphan left beside its re-run's copy).
    copies = rows(store, "SELECT metadata::jsonb->'headers'->>'id', count(*) FROM message_store.messages "
                         "WHERE message_store.category(stream_name) IN "
                         "('orders::order', 'orders::inventory', 'orders::payment', 'orders::shipment') "
                         "GROUP BY 1 HAVING count(*) > 1")
    assert copies == []
    placed = rows(store, "SELECT count(*) FROM message_store.messages WHERE type LIKE '%.OrderPlaced.%'")[0][0]
    assert placed == ORDERS
    # The read model agrees with every aggregate; the courier was called once per shipped order.
    assert rows(engine, 'SELECT o.order_id FROM "order" o LEFT JOIN order_summary s ON s.order_id = o.order_id '
                        "WHERE s.status IS NULL OR s.status != o.status") == []
    shipped = rows(engine, "SELECT count(*) FROM shipment WHERE status = 'DELIVERED'")[0][0]
    assert tuple(rows(engine, "SELECT count(*), min(attempts), max(attempts) FROM courier_call")[0]) == (
        shipped, 1, 1
    )
    markers = Counter(rows(engine, "SELECT message_key, handler FROM protean_celery_inbox"))
    assert markers and set(markers.values()) == {1}
