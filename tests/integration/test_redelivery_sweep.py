"""The redelivery sweep through a real `celery worker`, beat and Redis.

A message Redis lost (its queue's list deleted, as a server killed between a
worker's BRPOP and its unacked record loses it) is republished by the sweep,
dead-lettered as MessageLost when it keeps vanishing, and the saga it belongs to
completes once the dead letter is replayed. See ``lost_message.py``.
"""

import os
import re
import subprocess
import sys

import pytest

from protean_celery.testing.processes import BeatProcess, WorkerProcess
from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration

APP = "tests.integration.sweep_app"
SAGA_QUEUE = "protean.orders.OrderFulfillment"


@pytest.fixture
def env(redis_server, tmp_path):
    return {**os.environ, "CELERY_BROKER_URL": redis_server.url.rsplit("/", 1)[0] + "/4",
            "PROTEAN_CELERY_STATE": str(tmp_path), "PROTEAN_NO_AUTO_LOGGING": "1", "PYTHONPATH": str(ROOT)}


def script(env, phase):
    return subprocess.run([sys.executable, "tests/integration/lost_message.py", phase], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


def counts(line):
    return {key: int(value) for key, value in re.findall(r"'(\w+)': (\d+)", line)}


def lines(stdout):
    return {line.split(":")[0]: line for line in stdout.splitlines() if ":" in line}


def test_a_lost_message_is_republished_then_dead_lettered_and_the_saga_completes(env):
    queues = subprocess.run([sys.executable, "-m", "celery", "-A", APP, "protean", "topology"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120).stdout
    others = [q for q in re.findall(r"^  queue    (\S+)", queues, re.M) if q != SAGA_QUEUE]
    others.append("protean.orders.relay")
    with WorkerProcess(APP, concurrency=2, env=env, extra=["-Q", ",".join(others)]) as worker:
        lost = script(env, "lose")
        output = lost.stdout + lost.stderr + worker.tail()
    assert lost.returncode == 0, output
    steps = lines(lost.stdout)
    # Still in its queue: watched, not republished.
    queued = counts(steps["queued"])
    assert queued["watched"] == 1 and queued["redelivered"] == 0 and queued["checked"] >= 2, output
    assert steps["queued"].endswith("queued 1"), output
    # Gone from Redis: republished to the saga's queue only, twice, then dead-lettered.
    for step in ("lost once", "lost twice"):
        assert counts(steps[step])["redelivered"] == 1 and steps[step].endswith("queued 1"), output
    assert counts(steps["lost thrice"])["dead_lettered"] == 1 and steps["lost thrice"].endswith("queued 0"), output
    assert "dead letters 1: MessageLost" in lost.stdout, output
    assert "replayed, queued 1, watched 1" in lost.stdout, output  # the sweep watches the replayed copy too

    # Every queue consumed, beat sweeping: the saga completes, every relayed message was handled by each of
    # its handlers (a sweep reading them all republishes nothing) and no dead letter is left.
    with WorkerProcess(APP, concurrency=2, env=env) as worker, BeatProcess(APP, env=env):
        done = script(env, "finish")
        output = done.stdout + done.stderr + worker.tail()
    assert done.returncode == 0, output
    assert "saga completed" in done.stdout and "watched 0" in done.stdout
    final = counts(lines(done.stdout)["final sweep"])
    assert final["redelivered"] == 0 and final["dead_lettered"] == 0, output
    status = subprocess.run([sys.executable, "-m", "celery", "-A", APP, "protean", "status"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert "watched by the redelivery sweep  0" in status.stdout, status.stdout + status.stderr
    assert "dead letters  0" in status.stdout, status.stdout
