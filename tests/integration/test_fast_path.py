"""Messages committed by any process leave at once, with no beat running.

An API process that builds the app (imports the module that defines it) and
calls Protean's own ``domain.process(PlaceOrder)`` (or runs a command handler
synchronously in its own Unit of Work): the command, and everything the saga
produces after it, reaches the real worker without a beat tick, because no
beat runs here at all. Without the fast path no saga would ever start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from protean_celery.testing.processes import WorkerProcess
from tests.integration.orders import ROOT, rows

pytestmark = pytest.mark.integration

APP = "workers.orders.app"

_API = """
import sys, uuid
from workers.orders.app import app            # an API process: it builds the app, runs no worker
from workers.orders.domain import PlaceOrder, domain
from protean_celery import storage

storage.setup(app.domain, app.runtime.state)
if sys.argv[1] == "setup":
    raise SystemExit(0)
with domain.domain_context():
    for number in range(int(sys.argv[2])):
        order = PlaceOrder(order_id=f"api-{number}-{uuid.uuid4().hex[:6]}", customer="c", amount=10.0,
                           sku="s", quantity=1, declined=number == 0)
        domain.process(order, asynchronous=sys.argv[1] == "async")
"""


@pytest.fixture
def api_env(redis_server, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    env = {**os.environ, "CELERY_BROKER_URL": redis_server.url, "PROTEAN_CELERY_STATE": str(state),
           "PROTEAN_NO_AUTO_LOGGING": "1"}
    subprocess.run([sys.executable, "-c", _API, "setup"], cwd=ROOT, env=env, check=True, timeout=120)
    worker = WorkerProcess(APP, concurrency=2, env=env, log_path=tmp_path / "worker.log", cwd=ROOT).start()
    try:
        yield env, sa.create_engine(f"sqlite:///{state}/orders.db")
    finally:
        worker.stop()


def _wait_for_sagas(engine: sa.Engine, count: int, timeout: float = 60.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    statuses: dict[str, int] = {}
    while time.monotonic() < deadline:
        statuses = dict(rows(engine, 'SELECT status, count(*) FROM "order" GROUP BY status'))
        if statuses.get("COMPLETED", 0) + statuses.get("CANCELLED", 0) >= count:
            break
        time.sleep(0.2)
    return statuses


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_domain_process_from_an_api_process_needs_no_beat(api_env, mode):
    env, engine = api_env
    subprocess.run([sys.executable, "-c", _API, mode, "4"], cwd=ROOT, env=env, check=True, timeout=120)
    statuses = _wait_for_sagas(engine, 4)
    assert statuses == {"COMPLETED": 3, "CANCELLED": 1}
    # The last rows of a saga are marked by the worker's relay thread once the task that ran them returns.
    assert _unpublished_after_wait(engine) == 0


def _unpublished_after_wait(engine: sa.Engine, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        pending = rows(engine, "SELECT count(*) FROM outbox WHERE status != 'published'")[0][0]
        if pending == 0 or time.monotonic() > deadline:
            return pending
        time.sleep(0.1)
