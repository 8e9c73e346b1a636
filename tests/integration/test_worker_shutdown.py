"""Shutdown semantics of a real ``celery worker`` (Redis, SQLite), and a worker found through PROTEAN_DOMAIN.

Four 2-second jobs on a worker of two children: two run while the worker is told to
stop, two wait in the queue. Whatever the shutdown, once a new worker has run every
job is handled exactly once (one ``JobRan`` event, one receipt, one inbox marker per
handler and job) and nothing is left queued or unacknowledged. See "Shutdown" in
docs/guides/operations.md.
"""

import os
import signal

import pytest
import redis

from protean_celery.testing.processes import WorkerProcess
from tests.integration.jobs_state import JobsState, broker_idle, jobs_env, place, wait_until
from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration

JOBS = ("a", "b", "c", "d")


@pytest.fixture
def env(redis_server, tmp_path):
    return jobs_env(redis_server.url, tmp_path, 9)


def worker(env, app="tests.integration.jobs_app"):
    return WorkerProcess(app, concurrency=2, env=env, cwd=ROOT)


def running_two(env):
    """Place the jobs and start a worker; return it once it holds two of them (acks late: unacked)."""
    place(env, "--relay", *(f"{job}:2" for job in JOBS))
    started = worker(env).start()
    unacked = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    wait_until(lambda: unacked.hlen("unacked") == 2, what="two jobs taken by the worker")
    return started


def assert_each_job_handled_once_after_a_new_worker(env, state):
    with worker(env):
        wait_until(lambda: state.receipts() == set(JOBS) and broker_idle(env["CELERY_BROKER_URL"]),
                   what="every job handled and the broker idle")
    assert state.jobs() == set(JOBS)
    assert sorted(state.job_ran().values()) == [1, 1, 1, 1]
    assert state.markers() == {"tests.integration.jobs.Job": 4, "tests.integration.jobs.Receipts": 4}


def test_sigterm_finishes_running_handlers_and_exits_0(env, tmp_path):
    state = JobsState(tmp_path)
    stopping = running_two(env)
    os.kill(stopping.pid, signal.SIGTERM)  # warm shutdown: the main process only
    assert stopping.process.wait(timeout=60) == 0, stopping.tail()
    assert len(state.jobs()) == 2  # the two running jobs finished and committed before the exit
    assert not redis.Redis.from_url(env["CELERY_BROKER_URL"]).hlen("unacked")
    assert_each_job_handled_once_after_a_new_worker(env, state)


def test_sigquit_after_sigterm_stops_at_once_and_the_running_jobs_run_again(env, tmp_path):
    state = JobsState(tmp_path)
    stopping = running_two(env)
    os.kill(stopping.pid, signal.SIGTERM)
    os.kill(stopping.pid, signal.SIGQUIT)  # cold shutdown: running handlers are terminated
    assert stopping.process.wait(timeout=60) == 0, stopping.tail()
    assert not redis.Redis.from_url(env["CELERY_BROKER_URL"]).hlen("unacked")  # put back on their queue
    assert_each_job_handled_once_after_a_new_worker(env, state)


def test_a_worker_found_through_protean_domain_handles_a_command(env, tmp_path):
    found = {**env, "PROTEAN_DOMAIN": "tests.integration.jobs:domain"}
    place(env)  # creates the tables; nothing placed
    with worker(found, app="protean_celery.auto"):
        place(env, "--relay", "auto")
        state = JobsState(tmp_path)
        wait_until(lambda: state.receipts() == {"auto"} and broker_idle(env["CELERY_BROKER_URL"]),
                   what="the command and its event handled")
    assert state.markers() == {"tests.integration.jobs.Job": 1, "tests.integration.jobs.Receipts": 1}
