"""Outbox health through real `celery` processes on a real Redis: no row stuck, stale
claims recovered, `protean outbox` listing and requeueing, maintenance pruning.

The outbox is driven step by step by ``outbox_ops.py`` (see its docstring)."""

import os
import re
import subprocess
import sys
from collections import Counter

import pytest
import sqlalchemy as sa

from protean_celery.testing.processes import WorkerProcess
from tests.integration.orders import ROOT, rows
from tests.support.waiting import broker_idle, wait_until

pytestmark = pytest.mark.integration

APP = "workers.orders.app"


def _env(redis_server, tmp_path, db):
    import redis

    url = redis_server.url.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(url).flushdb()  # other tests share this Redis: no message of theirs reaches our worker
    return {**os.environ, "CELERY_BROKER_URL": url,
            "PROTEAN_CELERY_STATE": str(tmp_path), "PROTEAN_NO_AUTO_LOGGING": "1", "PYTHONPATH": str(ROOT)}


def celery(env, *args):
    result = subprocess.run([sys.executable, "-m", "celery", "-A", APP, *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    return result


def ops(env, *steps):
    result = subprocess.run([sys.executable, "tests/integration/outbox_ops.py", *steps], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def placed(out):
    """The outbox row ids, and (task, message key) of each handler task, of each ``place`` step's OrderPlaced."""
    return re.findall(r"^row (\S+)", out, re.M), re.findall(r"^task (\S+) \S+ (\S+)", out, re.M)


def wait_completed(tmp_path, order_ids, worker, timeout=90):
    """Until every order in ``order_ids`` is COMPLETED."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/orders.db")
    try:
        wait_until(lambda: {row[0] for row in rows(engine, "SELECT order_id FROM \"order\" WHERE status = 'COMPLETED'")}
                   >= set(order_ids), f"orders {order_ids} completed", timeout=timeout, worker=worker)
    finally:
        engine.dispose()


def wait_handled_by_each(tmp_path, tasks, worker, timeout=60):
    """Until each message has one inbox marker per handler task it went to (a marker is one handling:
    a second copy is acknowledged as a duplicate, or rolls back on the marker)."""
    expected = Counter(key for _task, key in tasks)
    engine = sa.create_engine(f"sqlite:///{tmp_path}/orders.db")

    def markers():
        found = Counter(row[0] for row in rows(engine, "SELECT message_key FROM protean_celery_inbox"))
        return {key: found[key] for key in expected}

    try:
        wait_until(lambda: markers() == expected, f"markers {dict(expected)}", timeout=timeout, worker=worker)
    finally:
        engine.dispose()


def _marker_count(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/orders.db")
    try:
        return rows(engine, "SELECT count(*) FROM protean_celery_inbox")[0][0]
    finally:
        engine.dispose()


def test_a_claim_left_by_a_crashed_relay_is_republished_once_its_lock_expires(redis_server, tmp_path):
    env = _env(redis_server, tmp_path, 5)
    with WorkerProcess(APP, concurrency=1, env=env) as worker:
        out = ops(env, "place:stale", "claim:crashed-relay", "relay", "expire", "relay", "rows")
        (row_id,), tasks = placed(out)
        assert f"claimed {row_id} crashed-relay" in out
        first, second = re.findall(r"^relayed (\d+)", out, re.M)
        assert (first, second) == ("0", "1")  # locked: skipped; lock expired: published
        assert f"status {row_id} published 0" in out
        wait_completed(tmp_path, ["stale"], worker)
        assert len(tasks) == 2  # the saga and the summary projector
        wait_handled_by_each(tmp_path, tasks, worker)


def test_failed_rows_end_abandoned_are_listed_and_requeued_then_handled(redis_server, tmp_path):
    env = _env(redis_server, tmp_path, 6)
    out = ops(env, "place:gone", "fail:7", "place:stuck", "protean-fail:5")
    (abandoned, stuck), tasks = placed(out)
    # [outbox.retry] max_attempts = 5: five attempts, then ABANDONED with the error (never stuck)
    assert re.findall(r"^run \d+ failed (\d)", out, re.M) == ["1"] * 5 + ["0"] * 2
    assert f"status {abandoned} abandoned 5 5" in out
    # Protean's own processor with max_attempts 5 leaves its row FAILED at 3 of 3: stuck
    assert f"status {stuck} failed 3 3" in out

    listed = celery(env, "protean", "outbox", "list", "--status", "abandoned").stdout
    assert f"{abandoned}  abandoned  Orders.OrderPlaced.v1  orders::order-gone  attempts 5/5" in listed
    assert "last error: broker refused the message (Max retries exceeded)" in listed
    listed = celery(env, "protean", "outbox", "list", "--status", "stuck").stdout
    assert f"{stuck}  stuck  Orders.OrderPlaced.v1" in listed and "1 outbox row(s)." in listed
    assert "failed 0  stuck 1  abandoned 1" in celery(env, "protean", "outbox", "status").stdout
    unknown = celery(env, "protean", "outbox", "requeue", "no-such-row")
    assert unknown.returncode == 1 and "No outbox row 'no-such-row'" in unknown.stderr

    with WorkerProcess(APP, concurrency=1, env=env) as worker:
        assert "stuck 1  abandoned 1" in celery(env, "protean", "status").stdout
        requeued = celery(env, "protean", "outbox", "requeue", stuck, "--all-abandoned").stdout
        assert "Requeued 2 outbox row(s)" in requeued
        assert "pending 2  processing 0  failed 0  stuck 0  abandoned 0" in celery(
            env, "protean", "outbox", "status").stdout
        assert celery(env, "call", "protean.orders.relay.outbox").returncode == 0  # one beat tick
        wait_completed(tmp_path, ["gone", "stuck"], worker)
        wait_handled_by_each(tmp_path, tasks, worker)
        wait_until(lambda: broker_idle(env["CELERY_BROKER_URL"]), "the broker idle", timeout=30, worker=worker)
        markers = _marker_count(tmp_path)
        assert celery(env, "call", "protean.orders.relay.maintenance").returncode == 0
        wait_until(lambda: broker_idle(env["CELERY_BROKER_URL"]), "maintenance run", timeout=30, worker=worker)
        assert _marker_count(tmp_path) == markers  # recent markers are kept
        assert "dead letters  0" in celery(env, "protean", "status").stdout
    # both orders' rows and every saga event after them were published
    assert "pending 0  processing 0  failed 0  stuck 0  abandoned 0  published 12" in celery(
        env, "protean", "outbox", "status").stdout


def test_maintenance_prunes_old_markers_dead_letters_and_outbox_rows_and_keeps_recent_ones(tmp_path):
    env = {**os.environ, "CELERY_BROKER_URL": "memory://", "PROTEAN_CELERY_STATE": str(tmp_path),
           "PROTEAN_NO_AUTO_LOGGING": "1", "PYTHONPATH": str(ROOT)}
    out = ops(env, "seed", "maintain:0", "maintain:30")
    keep, prune = out.split("report")[1:]
    # dead_letter_retention_days = 0 keeps every dead letter; the rest is pruned by age
    assert "('dead_letters', 0), ('errors', 0), ('inbox_markers', 1), ('lanes', 0), ('outbox_abandoned', 0), " \
           "('outbox_published', 1)" in keep
    assert "markers ['recent-marker']" in keep and "letters ['old-letter', 'recent-letter']" in keep
    assert "outbox ['orders::order-recent-row']" in keep
    # 30 days: the 40-day-old dead letter goes, yesterday's stays
    assert "('dead_letters', 1)" in prune and "letters ['recent-letter']" in prune
    assert "markers ['recent-marker']" in prune
