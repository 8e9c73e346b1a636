"""``celery -A app protean drain`` on a real Redis and SQLite, with no worker running."""

import json

import pytest

from tests.integration.jobs_state import JobsState, celery, jobs_env, place

pytestmark = pytest.mark.integration


@pytest.fixture
def env(redis_server, tmp_path):
    return jobs_env(redis_server.url, tmp_path, 8)


def test_drain_relays_and_runs_everything_pending_then_exits_0(env, tmp_path):
    place(env, "j1", "j2", "j3")
    state = JobsState(tmp_path)
    assert state.jobs() == set()  # placed, nothing handled: no worker runs
    result = celery(env, "protean", "drain", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    # The placing process relayed the commands as it placed them (the fast path); the drain ran them,
    # each command's task going on with the event its commit produced (continuation): 3 tasks, 6 runs.
    assert report["satisfied"] and report["failures"] == [] and report["tasks"] >= 3
    assert state.jobs() == state.receipts() == {"j1", "j2", "j3"}
    assert set(state.job_ran().values()) == {1}
    assert state.markers() == {"tests.integration.jobs.Job": 3, "tests.integration.jobs.Receipts": 3}
    status = celery(env, "protean", "status").stdout
    assert "unrelayed  0" in status and "dead letters  0" in status
    assert not [line for line in status.splitlines() if line.startswith("queue") and not line.endswith("  0")]


def test_drain_exits_1_naming_a_failed_handler_whose_message_is_dead_lettered(env, tmp_path):
    place(env, "ok", "bad:fail")
    result = celery(env, "protean", "drain")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED     protean.jobs.commands.Job failed on Jobs.RunJob.v1" in result.stdout
    assert "job bad fails on purpose" in result.stdout
    assert JobsState(tmp_path).receipts() == {"ok"}
    dead = celery(env, "protean", "dlq", "list").stdout
    assert "1 dead letter(s)." in dead and "Jobs.RunJob.v1" in dead and "fails on purpose" in dead


def test_drain_with_nothing_pending_exits_0_at_once(env):
    place(env)
    result = celery(env, "protean", "drain", "--timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ran        0 task(s) in 1 pass(es); relayed 0" in result.stdout
    assert "OK: nothing pending." in result.stdout
