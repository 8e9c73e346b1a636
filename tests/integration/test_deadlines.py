"""Payment deadlines of the orders saga through a real `celery worker` and `celery beat` on Redis.

Unpaid orders wait for their deadline; worker and beat are killed with SIGKILL
just before it is due and again once the first deadlines fired, then restarted.
Every deadline still fires exactly once (one ``TimeOutPayment`` per order in the
event store), and deadlines cancelled from the CLI never fire.
"""

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis
import sqlalchemy as sa

from protean_celery.testing.processes import BeatProcess, WorkerProcess
from tests.integration.orders import ROOT, dead_letters, rows
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

APP = "workers.orders.app"
WINDOW = 20  # seconds: enough to place the orders and cancel five from the CLI first
UNPAID, PAID, CANCELLED_BY_CLI = 15, 10, 5


@dataclass
class Outcome:
    db: sa.Engine
    state: str
    unpaid: list[str]
    paid: list[str]
    cancelled: list[str]
    due: dict[str, datetime]
    kills: int


def _utc(value):
    value = datetime.fromisoformat(str(value))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _pending(db):
    return {key: _utc(due) for key, due in rows(db, "SELECT key, due_at FROM protean_celery_deadlines")}


def _orders(db, status):
    return {order_id for (order_id,) in rows(db, 'SELECT order_id FROM "order" WHERE status = :s', s=status)}


def _restart(*processes):
    for process in processes:
        process.kill()
    for process in processes:
        process.start()


@pytest.fixture(scope="module")
def outcome(redis_server, tmp_path_factory):
    state = tmp_path_factory.mktemp("deadlines")
    url = redis_server.url.rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(url).flushdb()
    env = {**os.environ, "CELERY_BROKER_URL": url, "PROTEAN_CELERY_STATE": str(state),
           "PROTEAN_NO_AUTO_LOGGING": "1", "ORDERS_PAYMENT_WINDOW_SECONDS": str(WINDOW)}
    db = sa.create_engine(f"sqlite:///{state}/orders.db")
    unpaid = [f"d-unpaid-{n}" for n in range(UNPAID)]
    paid = [f"d-paid-{n}" for n in range(PAID)]
    placed = subprocess.run([sys.executable, "-m", "tests.integration.deadline_ops", "d", str(PAID), str(UNPAID)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert placed.returncode == 0, placed.stderr
    worker = WorkerProcess(APP, concurrency=2, env=env, cwd=ROOT, log_path=state / "worker.log")
    beat = BeatProcess(APP, env=env, cwd=ROOT, log_path=state / "beat.log")
    try:
        worker.start()
        beat.start()
        wait_until(lambda: len(_pending(db)) == UNPAID and _orders(db, "COMPLETED") == set(paid),
                   "the paid sagas completed and the unpaid ones waiting for their deadline", worker=worker)
        cancelled = unpaid[:CANCELLED_BY_CLI]
        cli = subprocess.run([sys.executable, "-m", "celery", "-A", APP, "protean", "deadlines", "cancel",
                              *(f"payment-{order_id}" for order_id in cancelled)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        due = _pending(db)
        assert len(due) == UNPAID - CANCELLED_BY_CLI, "the window ran out before the CLI cancelled"
        first = min(due.values())
        wait_until(lambda: datetime.now(UTC) >= first.replace(microsecond=0), "just before the first deadline",
                   timeout=WINDOW + 30)
        _restart(worker, beat)  # killed right around the due time
        wait_until(lambda: len(_pending(db)) < len(due), "the first deadlines fired", worker=worker)
        _restart(worker, beat)  # and again while they fire and their commands are handled
        fired = {f"payment-{order_id}" for order_id in unpaid[CANCELLED_BY_CLI:]}
        wait_until(lambda: _orders(db, "CANCELLED") == {key.removeprefix("payment-") for key in fired}
                   and not _pending(db), "every unpaid order cancelled by its deadline", worker=worker)
        return Outcome(db, str(state), unpaid, paid, cancelled, due, kills=2)
    finally:
        beat.stop()
        worker.stop()


def _count(db, stream, kind):
    return rows(db, "SELECT count(*) FROM protean_events WHERE stream_name = :s AND type = :t",
                s=stream, t=f"Orders.{kind}.v1")[0][0]


def test_every_deadline_fired_exactly_once_through_two_kills(outcome):
    fired = outcome.unpaid[CANCELLED_BY_CLI:]
    counts = {
        order_id: (
            _count(outcome.db, f"orders::payment:command-{order_id}", "TimeOutPayment"),
            _count(outcome.db, f"orders::payment-{order_id}", "PaymentTimedOut"),
            _count(outcome.db, f"orders::order:command-{order_id}", "CancelOrder"),
        )
        for order_id in fired
    }
    assert counts == {order_id: (1, 1, 1) for order_id in fired}
    lateness = [
        (_utc(rows(outcome.db, "SELECT time FROM protean_events WHERE stream_name = :s AND type = :t",
                   s=f"orders::payment:command-{order_id}", t="Orders.TimeOutPayment.v1")[0][0])
         - outcome.due[f"payment-{order_id}"]).total_seconds()
        for order_id in fired
    ]
    assert min(lateness) >= 0  # never early
    print(f"\ndeadline chaos: {len(fired)} fired once each through {outcome.kills} SIGKILLs of worker and beat, "
          f"{len(outcome.cancelled)} cancelled; lateness after the due time {min(lateness):.1f}-{max(lateness):.1f} s")
    assert dead_letters(outcome.state) == []


def test_a_cancelled_deadline_never_fires(outcome):
    for order_id in outcome.cancelled:
        assert _count(outcome.db, f"orders::payment:command-{order_id}", "TimeOutPayment") == 0
    assert _orders(outcome.db, "PLACED") == set(outcome.cancelled)  # still waiting: nothing cancelled them


def test_a_paid_order_completes_whatever_its_deadline_did(outcome):
    assert _orders(outcome.db, "COMPLETED") == set(outcome.paid)
    statuses = rows(outcome.db, "SELECT status, count(*) FROM payment GROUP BY status")
    assert dict(statuses) == {"CONFIRMED": PAID, "TIMED_OUT": UNPAID - CANCELLED_BY_CLI}
