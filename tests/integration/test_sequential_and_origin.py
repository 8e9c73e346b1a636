"""``sequential_by`` and ``origin_stream`` through a real ``celery worker`` on PostgreSQL.

``Teller`` is ``sequential_by="key"`` and takes 300 ms a message; four worker
children handle four ``k1`` and four ``k2`` deposits: the two keys run side by
side, the messages of one key never overlap. A deposit without a key is
dead-lettered with the reason. ``Auditor`` takes only messages caused from
``seq::branch``: it handles none of these, and each is marked handled for it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text

from protean_celery.deadletter import DeadLetters
from protean_celery.testing.processes import WorkerProcess
from tests.integration.orders import ROOT
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

APP = "tests.integration.sequential_app"
KEYS = ["k1", "k2"] * 4 + ["-"]


@pytest.fixture
def env(redis_server: Any, postgres_server: Any, tmp_path: Path) -> dict[str, str]:
    broker = redis_server.url.rsplit("/", 1)[0] + "/8"
    redis.Redis.from_url(broker).flushdb()
    return {**os.environ, "CELERY_BROKER_URL": broker, "PROTEAN_CELERY_STATE": str(tmp_path),
            "SEQ_DATABASE_URL": postgres_server.create_database("sequential_by"), "PROTEAN_NO_AUTO_LOGGING": "1"}


def _runs(state: Path, handler: str) -> list[tuple[str, float, float]]:
    with sqlite3.connect(state / "teller.db", timeout=30) as conn:
        return list(conn.execute("SELECT key, started, ended FROM runs WHERE handler = ? ORDER BY started", (handler,)))


def _parked(state: Path, task: str) -> list[Any]:
    engine = create_engine(f"sqlite:///{state}/relay.db")
    try:
        return DeadLetters(engine).list(task=task)
    finally:
        engine.dispose()


def _marked(env: dict[str, str], handler: str) -> int:
    engine = create_engine(env["SEQ_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM protean_celery_inbox WHERE handler = :h"),
                                    {"h": handler}).scalar() or 0)
    finally:
        engine.dispose()


def test_one_key_at_a_time_keyless_parked_and_other_origins_skipped(env, tmp_path):
    queued = subprocess.run([sys.executable, "-m", APP, "queue", *KEYS], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert queued.returncode == 0, queued.stderr
    with WorkerProcess(APP, concurrency=4, env=env, cwd=ROOT):
        wait_until(lambda: len(_runs(tmp_path, "teller")) == 8 and _parked(tmp_path, "protean.seq.Teller"),
                   "every keyed deposit handled and the keyless one parked", timeout=120)
        wait_until(lambda: _marked(env, "tests.integration.sequential_app.Auditor") == len(KEYS),
                   "every deposit marked handled for Auditor", timeout=60)
    runs = _runs(tmp_path, "teller")
    for key in ("k1", "k2"):
        spans = [(started, ended) for run_key, started, ended in runs if run_key == key]
        assert len(spans) == 4
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)), spans
    k1 = [(s, e) for k, s, e in runs if k == "k1"]
    k2 = [(s, e) for k, s, e in runs if k == "k2"]
    assert any(s1 < e2 and s2 < e1 for s1, e1 in k1 for s2, e2 in k2)  # the keys did run side by side
    [parked] = _parked(tmp_path, "protean.seq.Teller")
    assert "has no 'key', which Teller is sequential_by" in parked.error
    assert _runs(tmp_path, "auditor") == [] and _parked(tmp_path, "protean.seq.Auditor") == []
