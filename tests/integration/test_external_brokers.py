"""``[outbox] external_brokers``: published events reach a real Redis Streams broker exactly once, and no handler twice.

The feeds domain (``tests/integration/feeds``) names one external broker,
``partners``: Protean's ``redis`` broker on a private ``redis-server``. A real
``celery worker`` and ``celery beat`` run the app on another Redis. Tickets are
opened three ways, so each path that relays outbox rows is used:

* by an API process that builds the app, handling the commands itself: its
  fast path publishes the rows its commits wrote;
* by a process with Protean only (no app, so no fast path): beat's relay ticks publish them;
* as asynchronous commands handled by the worker: the worker's fast path.

Every ``TicketOpened`` must arrive once in the ``feeds::ticket`` stream of the
external broker, and ``Desk`` must handle each internal event once, with no second
copy reaching its task: a row for the external broker relayed as a task would be one.
"""

from __future__ import annotations

from collections import Counter

import pytest
import redis

from protean_celery.testing.processes import BeatProcess, WorkerProcess
from protean_celery.testing.servers import RedisServer
from tests.integration.feeds_ops import (
    APP,
    deliveries,
    external_messages,
    feeds_env,
    handled,
    open_tickets,
    outbox,
)
from tests.integration.orders import ROOT
from tests.support.waiting import broker_idle, wait_until

pytestmark = pytest.mark.integration

STREAM = "feeds::ticket"
DESK = "protean.feeds.Desk"
PER_PATH = 5


@pytest.fixture
def partners():
    """The external broker's own ``redis-server``."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def feeds(redis_server, partners, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    env = feeds_env(state, redis_server.url.rsplit("/", 1)[0] + "/5", partners.url)
    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()
    open_tickets(env, "setup")
    worker = WorkerProcess(APP, concurrency=2, env=env, log_path=tmp_path / "worker.log", cwd=ROOT).start()
    beat = BeatProcess(APP, env=env, log_path=tmp_path / "beat.log", cwd=ROOT).start()
    try:
        yield env, state, worker
    finally:
        beat.stop()
        worker.stop()


def test_published_events_reach_the_external_stream_once_and_no_handler_task_twice(feeds, partners):
    env, state, worker = feeds
    open_tickets(env, "sync", 0, PER_PATH)  # fast path of the API process
    open_tickets(env, "no-app", PER_PATH, PER_PATH)  # no fast path: beat's ticks
    open_tickets(env, "async", 2 * PER_PATH, PER_PATH)  # handled by the worker: its fast path
    tickets = 3 * PER_PATH

    def settled() -> bool:
        rows_now = outbox(state)
        return len(rows_now) == 3 * tickets and all(row.status == "published" for row in rows_now)

    wait_until(settled, "every outbox row published", worker=worker)
    wait_until(lambda: handled(state) == 2 * tickets, "Desk handled every internal event", worker=worker)
    wait_until(lambda: broker_idle(env["CELERY_BROKER_URL"]), "no task queued or in flight", worker=worker)

    arrived = external_messages(partners.url, STREAM)
    external_rows = [row for row in outbox(state) if row.target_broker == "partners"]
    assert len(external_rows) == tickets
    assert len(arrived) == tickets  # exactly once each
    assert Counter(m["metadata"]["headers"]["id"] for m in arrived) == Counter(r.message_id for r in external_rows)
    assert {m["metadata"]["headers"]["type"] for m in arrived} == {"Feeds.TicketOpened.v1"}
    assert sorted(m["data"]["ticket_id"] for m in arrived) == sorted(f"t{n}" for n in range(tickets))

    # Each internal event reached Desk once: as a task, or in the worker's continuing task.
    # A row for the external broker relayed as a task would be a second copy of a TicketOpened.
    desk = deliveries(state, DESK)
    assert set(desk.values()) <= {1}, desk
    assert handled(state) == 2 * tickets
    print(f"\nexternal: {len(external_rows)} rows, {len(arrived)} arrived in {STREAM}; "
          f"Desk: {2 * tickets} internal events handled, {sum(desk.values())} of them as tasks, no copy twice")
