"""Retries through a real ``celery worker``: backoff measured from the handler's own attempt records.

``JobRunner`` (``tests/integration/flaky_app.py``) records the time of each
attempt. Protean's ``[server.subscriptions.JobRunner]`` gives it 3 retries,
the first 0.5 s after a failure, doubling, each jittered ±25%: retry ``n``
starts at least ``0.75 × 0.5 × 2^(n-1)`` s after attempt ``n`` started.
Only those lower bounds are tight; upper bounds are generous (a loaded machine
is slow, never early).
"""

from __future__ import annotations

from collections.abc import Iterator
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
from tests.integration.flaky_app import MAX_RETRIES, RETRY_DELAY
from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return flaky_env(redis_server.url.rsplit("/", 1)[0] + "/6", tmp_path_factory.mktemp("retries"))


@pytest.fixture(scope="module")
def worker(env: dict[str, str]) -> Iterator[WorkerProcess]:
    setup = celery(env, "protean", "db", "setup")
    assert setup.returncode == 0, setup.stderr
    with WorkerProcess(APP, concurrency=1, env=env, cwd=ROOT) as running:
        yield running  # type: ignore[misc]


@pytest.fixture(scope="module")
def payloads(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return job_payloads(env, {"twice": 2, "always": 1000})


def _earliest(retry: int) -> float:
    """The shortest wait before retry number ``retry`` (1-based): the jitter band's floor."""
    return 0.75 * RETRY_DELAY * 2 ** (retry - 1) - 0.02  # 20 ms for clock rounding


def test_a_handler_that_fails_twice_is_retried_with_backoff_and_handled_once(env, worker, payloads):
    send(env, payloads["twice"], "twice-1")
    wait_until(lambda: job_saved(env, "twice"), "the job to be saved")
    started = attempts(env, "twice")
    assert len(started) == 3  # two failures, one success
    gaps = [later - earlier for earlier, later in zip(started, started[1:], strict=False)]
    assert gaps[0] >= _earliest(1) and gaps[1] >= _earliest(2), gaps
    assert all(gap < 30 for gap in gaps), gaps
    assert dead_letter(env, "twice") is None


def test_a_handler_that_always_fails_is_dead_lettered_after_exactly_its_max_retries(env, worker, payloads):
    send(env, payloads["always"], "always-1")
    entry = wait_until(lambda: dead_letter(env, "always"), "the dead letter")
    assert entry.attempts == MAX_RETRIES + 1  # the first try and every retry
    assert entry.error == f"RuntimeError: job always fails on purpose (attempt {MAX_RETRIES + 1})"
    started = attempts(env, "always")
    assert len(started) == MAX_RETRIES + 1
    gaps = [later - earlier for earlier, later in zip(started, started[1:], strict=False)]
    assert all(gap >= _earliest(retry) for retry, gap in enumerate(gaps, start=1)), gaps
    assert not job_saved(env, "always")
