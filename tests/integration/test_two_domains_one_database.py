"""Two domains, two apps, one database: each relay publishes and marks only its own domain's outbox rows.

The feeds test domain runs twice, as ``north`` and ``south`` (``FEEDS_DOMAIN``), with
one state directory, so both write to one ``outbox`` table in one SQLite file. Each
has its own real ``celery worker``; only north has a ``celery beat`` at first.
Tickets of both domains are handled by processes without an app (no fast path), so
only a beat tick publishes their rows: north's ticks must publish every north row and
leave every south row pending, though they are older and as claimable. Then south's
beat starts and publishes south's rows to south's worker.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from protean_celery.testing.processes import BeatProcess, WorkerProcess
from protean_celery.testing.servers import RedisServer
from tests.integration.feeds_ops import APP, deliveries, feeds_env, handled, open_tickets, outbox
from tests.integration.orders import ROOT
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

TICKETS = 5


@pytest.fixture
def shared(redis_server, tmp_path):
    """North's and south's environments: one state directory (one database), a Celery broker each."""
    state = tmp_path / "state"
    state.mkdir()
    base = redis_server.url.rsplit("/", 1)[0]
    with RedisServer() as partners:
        envs = {name: feeds_env(state, f"{base}/{db}", partners.url, domain=name)
                for name, db in (("north", 6), ("south", 7))}
        for env in envs.values():
            open_tickets(env, "setup")
        yield envs, state, tmp_path


def _rows(state, domain):
    return [row for row in outbox(state) if row.stream_name.startswith(f"{domain}::")]


def test_each_apps_relay_publishes_only_its_own_domains_rows(shared):
    envs, state, logs = shared
    with ExitStack() as stack:
        def start(process):
            return stack.enter_context(process)

        north = start(WorkerProcess(APP, concurrency=1, env=envs["north"], name="north@%h", cwd=ROOT,
                                    log_path=logs / "north-worker.log"))
        south = start(WorkerProcess(APP, concurrency=1, env=envs["south"], name="south@%h", cwd=ROOT,
                                    log_path=logs / "south-worker.log"))
        open_tickets(envs["south"], "no-app", 0, TICKETS, prefix="s")
        open_tickets(envs["north"], "no-app", 0, TICKETS, prefix="n")
        start(BeatProcess(APP, env=envs["north"], cwd=ROOT, log_path=logs / "north-beat.log"))

        wait_until(lambda: {row.status for row in _rows(state, "north")} == {"published"},
                   "north's rows published", worker=north)
        wait_until(lambda: handled(state, "north") == 2 * TICKETS, "north's Desk", worker=north)
        south_rows = _rows(state, "south")
        assert len(south_rows) == 3 * TICKETS  # TicketOpened twice (internal, partners), TicketNoted once
        assert {row.status for row in south_rows} == {"pending"}  # north's ticks left every one
        assert deliveries(state, "protean.south.Desk") == {} and handled(state, "south") == 0

        start(BeatProcess(APP, env=envs["south"], cwd=ROOT, log_path=logs / "south-beat.log"))
        wait_until(lambda: {row.status for row in _rows(state, "south")} == {"published"},
                   "south's rows published", worker=south)
        wait_until(lambda: handled(state, "south") == 2 * TICKETS, "south's Desk", worker=south)
    assert set(deliveries(state, "protean.north.Desk").values()) <= {1}
    assert set(deliveries(state, "protean.south.Desk").values()) <= {1}
    assert len(outbox(state)) == 6 * TICKETS
    print(f"\nnorth: {len(_rows(state, 'north'))} rows published by north's relay; south: {len(south_rows)} rows "
          f"left pending by it, then published by south's")
