"""The embedded default (SQLite files, WAL) when a worker child dies holding the write lock mid-transaction.

A handler's Unit of Work takes SQLite's write lock with its first statement (the
inbox marker) and holds it until it commits. The test finds the pool child that
holds the write lock of ``jobs.db`` in ``/proc/locks``, stops it, checks it still
holds the lock, and kills it (``protean_celery.testing.sqlite_locks``): it dies
inside its transaction. Then the lock is free, the file is not corrupted, the
message it was handling is redelivered and handled exactly once, and the other
children go on committing (nothing waits on a lock that nobody holds, nothing is
dead-lettered as "database is locked"). See "Crash survival" in
docs/guides/operations.md.
"""

import sqlite3

import pytest
import sqlalchemy as sa

from protean_celery.testing.processes import WorkerProcess
from protean_celery.testing.sqlite_locks import child_of, kill_writer
from tests.integration.jobs_state import APP, JobsState, broker_idle, jobs_env, place, wait_until
from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration

JOBS = {"held", "a", "b", "c"}


@pytest.fixture
def env(redis_server, tmp_path):
    return jobs_env(redis_server.url, tmp_path, 7)


def _write_lock_free(database):
    """Whether a new writer gets the write lock at once (no busy wait)."""
    conn = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _scalar(database, query):
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(query).scalar()
    finally:
        engine.dispose()


def test_a_child_killed_holding_the_write_lock_mid_transaction(env, tmp_path):
    state, jobs_db = JobsState(tmp_path), tmp_path / "jobs.db"
    place(env)  # the tables
    with WorkerProcess(APP, concurrency=2, env=env, cwd=ROOT) as worker:
        children = worker.children()
        place(env, "--relay", "held:3", "a", "b", "c")  # "held" holds the lock for 3 s inside its handler

        killed = kill_writer([jobs_db], child_of(lambda: [worker.pid]), timeout=120)

        assert killed is not None and killed.pid in children  # a pool child, killed inside a write transaction
        wait_until(lambda: _write_lock_free(jobs_db), what="the write lock released")
        wait_until(lambda: state.receipts() == JOBS and broker_idle(env["CELERY_BROKER_URL"]),
                   what="every job handled, the killed one redelivered")
        place(env, "--relay", "after")  # later transactions are not held up by the dead writer
        wait_until(lambda: "after" in state.receipts() and broker_idle(env["CELERY_BROKER_URL"]),
                   what="a job placed after the kill handled")
        assert worker.process.poll() is None and len(worker.children()) == 2  # Celery replaced the child

    assert sorted(state.job_ran().values()) == [1] * 5  # exactly once each, the redelivered one included
    assert state.markers() == {"tests.integration.jobs.Job": 5, "tests.integration.jobs.Receipts": 5}
    assert _scalar(jobs_db, "PRAGMA integrity_check") == "ok"
    assert _scalar(tmp_path / "relay.db", "PRAGMA integrity_check") == "ok"
    assert _scalar(tmp_path / "relay.db", "SELECT COUNT(*) FROM protean_celery_dead_letters") == 0
