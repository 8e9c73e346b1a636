"""Only signed messages run: a payload without Protean's checksum is dead-lettered, unless accepted.

A real ``celery worker`` of ``tests/integration/flaky_app.py`` whose handler
records every attempt. Anyone who can write to the broker can put a task on a
handler's queue; without ``metadata.envelope.checksum`` it must not run.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from protean_celery.testing.processes import WorkerProcess
from tests.integration.flaky import (
    APP,
    attempts,
    celery,
    dead_letter,
    flaky_env,
    job_payloads,
    job_saved,
    send,
    wait_until,
)
from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def env(redis_server: Any, tmp_path: Any) -> dict[str, str]:
    env = flaky_env(redis_server.url.rsplit("/", 1)[0] + "/7", tmp_path)
    setup = celery(env, "protean", "db", "setup")
    assert setup.returncode == 0, setup.stderr
    return env


def _unsigned(payload: dict[str, Any]) -> dict[str, Any]:
    forged = copy.deepcopy(payload)
    forged["metadata"]["envelope"]["checksum"] = None
    return forged


def test_an_unsigned_message_is_dead_lettered_and_its_handler_does_not_run(env):
    payloads = job_payloads(env, {"unsigned": 0, "signed": 0})
    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT):
        send(env, _unsigned(payloads["unsigned"]), "unsigned-1")
        entry = wait_until(lambda: dead_letter(env, "unsigned"), "the unsigned message's dead letter")
        send(env, payloads["signed"], "signed-1")  # queued behind it: the worker keeps consuming
        wait_until(lambda: job_saved(env, "signed"), "the signed job")
    assert entry.error.startswith("DecodeError: Task payload has no checksum (metadata.envelope.checksum)")
    assert entry.attempts == 1 and entry.payload == _unsigned(payloads["unsigned"])
    assert attempts(env, "unsigned") == [] and not job_saved(env, "unsigned")
    assert len(attempts(env, "signed")) == 1


def test_accept_unsigned_runs_unsigned_messages_during_a_migration(env):
    payloads = job_payloads(env, {"legacy": 0})
    with WorkerProcess(APP, concurrency=1, env={**env, "FLAKY_ACCEPT_UNSIGNED": "1"}, cwd=ROOT):
        send(env, _unsigned(payloads["legacy"]), "legacy-1")
        wait_until(lambda: job_saved(env, "legacy"), "the unsigned job")
    assert len(attempts(env, "legacy")) == 1
    assert dead_letter(env, "legacy") is None
