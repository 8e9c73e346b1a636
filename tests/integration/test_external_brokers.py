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
external broker, and the handler task must get each event once: a row for the
external broker that reached a handler task would show there as a second copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from protean_celery.testing.processes import BeatProcess, WorkerProcess
from protean_celery.testing.servers import RedisServer
from tests.integration.orders import ROOT, rows
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

APP = "tests.integration.feeds_app"
STREAM = "feeds::ticket"
PER_PATH = 5

_OPEN = """
import sys
mode, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if mode != "no-app":
    from tests.integration.feeds_app import app   # the API process builds the app: its commits leave at once
    from protean_celery import storage
    storage.setup(app.domain, app.runtime.state)
else:
    import protean_celery
    from protean_celery import prepare_databases
    from tests.integration.feeds import domain
    prepare_databases(domain.config)
    domain.init(traverse=False)
from tests.integration.feeds import OpenTicket, domain
with domain.domain_context():
    for number in range(first, first + count):
        domain.process(OpenTicket(ticket_id=f"t{number}"), asynchronous=mode == "async")
"""


def _open(env: dict[str, str], mode: str, first: int, count: int) -> None:
    subprocess.run([sys.executable, "-c", _OPEN, mode, str(first), str(count)], cwd=ROOT, env=env, check=True,
                   timeout=120)


@pytest.fixture
def partners():
    """The external broker's own ``redis-server``."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def feeds(redis_server, partners, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    env = {**os.environ, "CELERY_BROKER_URL": redis_server.url.rsplit("/", 1)[0] + "/5",
           "FEEDS_PARTNERS_URL": partners.url, "PROTEAN_CELERY_STATE": str(state), "PROTEAN_NO_AUTO_LOGGING": "1"}
    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()
    _open(env, "setup", 0, 0)  # creates the tables
    worker = WorkerProcess(APP, concurrency=2, env=env, log_path=tmp_path / "worker.log", cwd=ROOT).start()
    beat = BeatProcess(APP, env=env, log_path=tmp_path / "beat.log", cwd=ROOT).start()
    try:
        yield env, state, worker
    finally:
        beat.stop()
        worker.stop()


def _external_messages(url: str) -> list[dict]:
    client = redis.Redis.from_url(url)
    return [json.loads(fields[b"data"]) for _, fields in client.xrange(STREAM)]


def _outbox(state: Path) -> list[sa.Row]:
    engine = sa.create_engine(f"sqlite:///{state}/feeds.db")
    try:
        return rows(engine, "SELECT type, target_broker, status, message_id FROM outbox")
    finally:
        engine.dispose()


def test_published_events_reach_the_external_stream_once_and_no_handler_task_twice(feeds, partners):
    env, state, worker = feeds
    _open(env, "sync", 0, PER_PATH)  # fast path of the API process
    _open(env, "no-app", PER_PATH, PER_PATH)  # no fast path: beat's ticks
    _open(env, "async", 2 * PER_PATH, PER_PATH)  # handled by the worker: its fast path
    tickets = 3 * PER_PATH

    def settled() -> bool:
        outbox = _outbox(state)
        return len(outbox) == 3 * tickets and all(row.status == "published" for row in outbox)

    wait_until(settled, "every outbox row published", worker=worker)
    wait_until(lambda: (state / "deliveries").exists() and len(
        [line for line in (state / "deliveries").read_text().splitlines() if ".Desk " in line]) >= 2 * tickets,
        "Desk's deliveries", worker=worker)

    arrived = _external_messages(partners.url)
    external_rows = [row for row in _outbox(state) if row.target_broker == "partners"]
    assert len(external_rows) == tickets
    assert len(arrived) == tickets  # exactly once each
    assert Counter(m["metadata"]["headers"]["id"] for m in arrived) == Counter(r.message_id for r in external_rows)
    assert {m["metadata"]["headers"]["type"] for m in arrived} == {"Feeds.TicketOpened.v1"}
    assert sorted(m["data"]["ticket_id"] for m in arrived) == sorted(f"t{n}" for n in range(tickets))

    deliveries = Counter(
        line.split(" ", 1)[1] for line in (state / "deliveries").read_text().splitlines() if ".Desk " in line
    )
    assert len(deliveries) == 2 * tickets  # TicketOpened and TicketNoted of each ticket ...
    assert set(deliveries.values()) == {1}  # ... each reached the handler task once: no external copy
    engine = sa.create_engine(f"sqlite:///{state}/feeds.db")
    try:
        assert rows(engine, "SELECT count(*) FROM handled")[0][0] == 2 * tickets
    finally:
        engine.dispose()
    print(f"\nexternal: {len(external_rows)} rows, {len(arrived)} arrived in {STREAM}; "
          f"Desk deliveries: {sum(deliveries.values())} for {2 * tickets} internal events")
