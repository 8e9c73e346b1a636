"""Protean's default delivery under a real ``celery worker`` and ``celery beat``: the outbox off.

The orders saga (command handlers, an event handler with a side effect, a
projector, a process manager) with ``enable_outbox = false`` and event store
subscriptions: every event is read from the event store past the relay's
cursors. On the embedded default (SQLite files, Redis) with the fast path and
with beat ticks alone; on PostgreSQL (the SQL event store) with the fast path.
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

APP = "tests.integration.outbox_off_app"
ORDERS = 6

_API = """
import sys
from tests.integration.outbox_off_app import app      # an API process: it builds the app, runs no worker
from workers.orders.domain import PlaceOrder, domain
from protean_celery import storage

storage.setup(app.domain, app.runtime.state)
if sys.argv[1] == "setup":
    raise SystemExit(0)
with domain.domain_context():
    for number in range(int(sys.argv[1])):
        domain.process(PlaceOrder(order_id=f"off-{number}", customer="c", amount=10.0, sku="s", quantity=1,
                                  declined=number == 0), asynchronous=True)
"""


@pytest.fixture(params=["sqlite, fast path", "sqlite, beat only", "postgres, fast path"])
def outbox_off_run(request, redis_server, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    env = {**os.environ, "CELERY_BROKER_URL": redis_server.url, "PROTEAN_CELERY_STATE": str(state),
           "PROTEAN_NO_AUTO_LOGGING": "1", "OUTBOX_OFF_NUDGE": "0" if "beat only" in request.param else "1"}
    url = f"sqlite:///{state}/orders.db"
    if request.param.startswith("postgres"):
        url = request.getfixturevalue("postgres_server").create_database("orders_outbox_off")
        env.update(PROTEAN_ENV="production", DATABASE_URL=url)  # aggregates, events and state on PostgreSQL
    subprocess.run([sys.executable, "-c", _API, "setup"], cwd=ROOT, env=env, check=True, timeout=120)
    worker = WorkerProcess(APP, concurrency=2, env=env, log_path=tmp_path / "worker.log", cwd=ROOT).start()
    beat = BeatProcess(APP, env=env, log_path=tmp_path / "beat.log", cwd=ROOT).start()
    try:
        subprocess.run([sys.executable, "-c", _API, str(ORDERS)], cwd=ROOT, env=env, check=True, timeout=120)
        engine = sa.create_engine(url)
        state_engine = engine if request.param.startswith("postgres") else sa.create_engine(f"sqlite:///{state}/relay.db")
        yield engine, DeadLetters(state_engine)
        engine.dispose()
        state_engine.dispose()
    finally:
        beat.stop()
        worker.stop()


def _settled(engine: sa.Engine, timeout: float = 120.0) -> dict[str, int]:
    """Order statuses once every saga ended (completed or compensated) and the projection caught up."""
    deadline = time.monotonic() + timeout
    statuses: dict[str, int] = {}
    while time.monotonic() < deadline:
        statuses = dict(rows(engine, 'SELECT status, count(*) FROM "order" GROUP BY status'))
        summaries = rows(engine, "SELECT count(*) FROM order_summary WHERE status IN ('COMPLETED', 'CANCELLED')")
        if statuses.get("COMPLETED", 0) + statuses.get("CANCELLED", 0) >= ORDERS and summaries[0][0] >= ORDERS:
            break
        time.sleep(0.2)
    return statuses


def test_every_handler_kind_runs_once_with_the_outbox_off(outbox_off_run):
    engine, parked = outbox_off_run
    assert _settled(engine) == {"COMPLETED": ORDERS - 1, "CANCELLED": 1}
    # The projector: the read model agrees with every aggregate.
    assert rows(engine, 'SELECT o.order_id FROM "order" o LEFT JOIN order_summary s ON s.order_id = o.order_id '
                        "WHERE s.status IS NULL OR s.status != o.status") == []
    # The event handler's side effect: once per shipped order.
    shipped = rows(engine, "SELECT count(*) FROM shipment WHERE status = 'DELIVERED'")[0][0]
    assert tuple(rows(engine, "SELECT count(*), min(attempts), max(attempts) FROM courier_call")[0]) == (
        shipped, 1, 1
    )
    # The process manager: every saga complete in its stream.
    complete = rows(engine, "SELECT count(DISTINCT stream_name) FROM protean_events "
                            "WHERE category = 'orders::order_fulfillment' AND CAST(data AS TEXT) LIKE :p",
                    p='%"is_complete": true%')
    assert complete[0][0] == ORDERS
    # Every event and command of the saga reached each of its handlers exactly once (one inbox marker each).
    markers = Counter(rows(engine, "SELECT message_key, handler FROM protean_celery_inbox"))
    assert markers and set(markers.values()) == {1}
    events = rows(engine, "SELECT count(*) FROM protean_events WHERE category IN "
                          "('orders::order', 'orders::inventory', 'orders::payment', 'orders::shipment')")[0][0]
    assert len({key for key, _handler in markers}) >= events
    assert parked.list() == []
    assert not sa.inspect(engine).has_table("outbox") or rows(engine, "SELECT count(*) FROM outbox")[0][0] == 0
