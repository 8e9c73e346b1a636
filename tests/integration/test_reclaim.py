"""A message a killed worker held goes back to its queue when no worker holds it (real workers, real Redis).

Kombu alone would wait ``visibility_timeout`` (an hour here) before restoring it.
The message is a PlaceOrder command sent with a countdown, so the worker holds it
as *scheduled* long enough to be asked about and killed.
"""

import os
import subprocess
import sys

import pytest
import redis
from celery import Celery
from sqlalchemy import create_engine, text

from protean_celery.broker import broker_for
from protean_celery.testing.processes import WorkerProcess
from tests.integration.orders import ROOT, place_order_payloads
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

APP = "workers.orders.app"
COMMANDS = "protean.orders.commands.Order"


@pytest.fixture
def env(redis_server, tmp_path):
    url = redis_server.url.rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(url).flushdb()
    return {**os.environ, "CELERY_BROKER_URL": url, "PROTEAN_CELERY_STATE": str(tmp_path),
            "PROTEAN_NO_AUTO_LOGGING": "1"}


def _unacked(env):
    return redis.Redis.from_url(env["CELERY_BROKER_URL"]).hlen("unacked")


def _order(env, order_id):
    engine = create_engine(f"sqlite:///{env['PROTEAN_CELERY_STATE']}/orders.db")
    try:
        with engine.connect() as conn:
            return conn.execute(text('SELECT status FROM "order" WHERE order_id = :o'), {"o": order_id}).scalar()
    except Exception:  # the table may not exist yet
        return None
    finally:
        engine.dispose()


def test_a_message_held_by_a_killed_worker_is_reclaimed_only_once_no_worker_holds_it(env, tmp_path):
    setup = subprocess.run([sys.executable, "-m", "celery", "-A", APP, "protean", "db", "setup"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert setup.returncode == 0, setup.stderr
    payload = place_order_payloads(env, ["held-1"])["held-1"]
    client = Celery(broker=env["CELERY_BROKER_URL"])
    broker = broker_for(client)
    log = tmp_path / "worker.log"
    first = WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT, log_path=log).start()
    client.send_task(COMMANDS, args=(payload,), task_id="held-1", queue=COMMANDS, countdown=15)
    wait_until(lambda: _unacked(env) == 1, "the worker holding held-1 (Redis' unacked hash)", timeout=30, worker=first)
    assert broker.reclaim(older_than=0) == []  # scheduled in a live worker: left alone
    first.kill()  # kill -9 the whole worker: the message stays in Redis' unacked hash
    assert broker.reclaim(older_than=0) == []  # no worker answers: nobody could run it now
    assert _unacked(env) == 1

    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT, log_path=log) as second:
        [back] = broker.reclaim(older_than=0)
        assert (back.task, back.task_id) == (COMMANDS, "held-1")
        wait_until(lambda: _order(env, "held-1") == "PLACED", "held-1 placed", timeout=60, worker=second)
        wait_until(lambda: _unacked(env) == 0, "held-1 acknowledged", timeout=30, worker=second)
