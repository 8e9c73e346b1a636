"""Priority lanes through a real ``celery worker``: a NORMAL message overtakes a BULK backlog.

On Redis and on RabbitMQ. The backlog is queued while no worker runs, then one NORMAL message after it;
the worker starts and ``Tally`` records the order it handled them in. With
lanes the NORMAL message is among the first few handled (the worker alternates
between the handler's queue and its backfill queue); without lanes it would be last.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from kombu import Connection

from protean_celery.testing.processes import WorkerProcess
from tests.integration.orders import ROOT
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

APP = "tests.integration.lanes_app"
BACKLOG = 200


def _ops(env: dict[str, str]) -> Callable[..., str]:
    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "tests.integration.lanes_ops", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout
    return run


def _handled(state: Path) -> list[str]:
    if not (state / "tally.db").exists():
        return []
    with sqlite3.connect(state / "tally.db", timeout=30) as conn:
        return [row[0] for row in conn.execute("SELECT item_id FROM tally ORDER BY seq")]


@pytest.fixture(params=["redis", "rabbitmq"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "redis":
        broker = request.getfixturevalue("redis_server").url.rsplit("/", 1)[0] + "/7"
        redis.Redis.from_url(broker).flushdb()
    else:
        broker = request.getfixturevalue("rabbitmq_server").url
    return {**os.environ, "CELERY_BROKER_URL": broker, "PROTEAN_CELERY_STATE": str(tmp_path), "LANES": "1",
            "PROTEAN_NO_AUTO_LOGGING": "1"}


def _ready(broker: str, queue: str) -> int:
    with Connection(broker) as connection:
        return int(connection.default_channel.queue_declare(queue, passive=True).message_count)


def test_a_normal_message_sent_after_a_bulk_backlog_is_handled_before_most_of_it(env, tmp_path):
    ops = _ops(env)
    ops("setup")
    ops("bulk", str(BACKLOG))
    ops("send", "urgent")
    broker = env["CELERY_BROKER_URL"]
    assert _ready(broker, "protean.lanes.Tally.backfill") == BACKLOG and _ready(broker, "protean.lanes.Tally") == 1
    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT):
        wait_until(lambda: len(_handled(tmp_path)) == BACKLOG + 1, "every message to be handled", timeout=240)
    order = _handled(tmp_path)
    assert order.index("urgent") < 5, order[:10]  # without lanes it is last, behind the whole backlog
    assert sorted(order) == sorted([f"bulk-{n}" for n in range(BACKLOG)] + ["urgent"])  # each once


def test_a_worker_taking_a_handler_queue_without_its_backfill_queue_is_warned_about(tmp_path, redis_server):
    broker = redis_server.url.rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(broker).flushdb()
    env = {**os.environ, "CELERY_BROKER_URL": broker, "PROTEAN_CELERY_STATE": str(tmp_path), "LANES": "1",
           "PROTEAN_NO_AUTO_LOGGING": "1"}
    _ops(env)("setup")
    warning = "Backfill queue(s) protean.lanes.Tally.backfill are not consumed"

    def check() -> str:
        done = subprocess.run([sys.executable, "-m", "celery", "-A", APP, "protean", "check"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        return done.stdout + done.stderr

    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT, extra=["-Q", "protean.lanes.Tally"]) as worker:
        assert f"{warning} by this worker's -Q" in worker.log()
        assert f"WARNING  {warning} by the running workers" in check()
    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT,
                       extra=["-Q", "protean.lanes.Tally,protean.lanes.Tally.backfill"]) as worker:
        assert "not consumed" not in worker.log()
        assert "WARNING  Backfill" not in check()
