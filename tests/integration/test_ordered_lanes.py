"""Ordered lanes through a real ``celery worker -c 4`` on PostgreSQL.

Bursts of ``Bumped`` events of 100 accounts are queued at once; four children
take neighbours of one account at the same time. ``InOrder`` (ordered) records
every account's bumps in commit order; ``AnyOrder`` (not ordered), in the same
run, records some out of order: the count can detect an inversion. ``Counted``
events of five ``sku`` rows, each from its own correlation chain, lose no update
in the ordered projector (serialised by ``sku``), while the unordered one, in the
same run, loses some.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from protean_celery.deadletter import DeadLetters
from protean_celery.testing.processes import WorkerProcess
from tests.integration import ordering_ops as ops
from tests.integration.orders import ROOT
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

APP = "tests.integration.ordering_app"
KEYS, ROUNDS, BURST, COUNTED = 100, 2, 5, 100
EVENTS = KEYS * ROUNDS * BURST


@pytest.fixture
def env(redis_server: Any, postgres_server: Any, tmp_path: Path) -> dict[str, str]:
    broker = redis_server.url.rsplit("/", 1)[0] + "/9"
    redis.Redis.from_url(broker).flushdb()
    return {**os.environ, "CELERY_BROKER_URL": broker, "PROTEAN_CELERY_STATE": str(tmp_path),
            "ORDERING_DATABASE_URL": postgres_server.create_database("ordered_lanes"),
            "PROTEAN_NO_AUTO_LOGGING": "1"}


def _parked(state: Path) -> list[Any]:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{state}/relay.db")
    try:
        return DeadLetters(engine).list()
    finally:
        engine.dispose()


def test_one_accounts_events_are_handled_in_commit_order_and_no_projection_update_is_lost(env, tmp_path):
    queued = subprocess.run([sys.executable, "-m", APP, "queue", str(KEYS), str(ROUNDS), str(BURST), str(COUNTED)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert queued.returncode == 0, queued.stderr
    url = env["ORDERING_DATABASE_URL"]
    with WorkerProcess(APP, concurrency=4, env=env, cwd=ROOT, log_path=tmp_path / "worker.log") as worker:
        wait_until(lambda: ops.seen(url) == {"InOrder": EVENTS, "AnyOrder": EVENTS}
                   and ops.tallies(url, "tally") == COUNTED and ops.handled(url, "LooseTallies") == COUNTED,
                   "every bump recorded by both handlers and every count tallied", timeout=300, worker=worker)
    assert ops.inversions(url, "InOrder") == 0
    assert ops.duplicates(url, "InOrder") == 0
    assert ops.inversions(url, "AnyOrder") > 0  # the same run, unordered: the count does see inversions
    assert ops.tallies(url, "tally") == COUNTED
    assert ops.tallies(url, "loose_tally") < COUNTED  # serialised by correlation only: updates were lost
    assert _parked(tmp_path) == []
