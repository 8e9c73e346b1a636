"""Drive ``tests.integration.flaky_app`` from a test: its environment, payloads and state.

Payloads are built by the app itself in a child process, so the test process
never imports the app with another test's environment.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from sqlalchemy import create_engine, text

from protean_celery.deadletter import DeadLetter, DeadLetters
from tests.integration.orders import ROOT
from tests.support.waiting import wait_until  # noqa: F401  (re-exported for the flaky-app tests)

APP = "tests.integration.flaky_app"
QUEUE = "protean.flaky.commands.Job"  # task name = queue name


_PAYLOADS = """
import json, sys
from protean.utils.eventing import Message
from protean_celery.envelope import encode
from tests.integration.flaky_app import RunJob, app

with app.domain.domain_context():
    out = {}
    for spec in sys.argv[1:]:
        job_id, failures = spec.split(":")
        command = app.domain._enrich_command(RunJob(job_id=job_id, failures=int(failures)), True)
        out[job_id] = encode(Message.from_domain_object(command))
print(json.dumps(out))
"""


def flaky_env(broker: str, state: Path) -> dict[str, str]:
    """The environment of the app's processes: an emptied Redis database and a state directory."""
    redis.Redis.from_url(broker).flushdb()
    return {**os.environ, "CELERY_BROKER_URL": broker, "PROTEAN_CELERY_STATE": str(state),
            "PROTEAN_NO_AUTO_LOGGING": "1"}


def celery(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``celery -A tests.integration.flaky_app <args>``."""
    return subprocess.run([sys.executable, "-m", "celery", "-A", APP, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def job_payloads(env: dict[str, str], failures: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Signed ``RunJob`` task payloads, one per job id, failing ``failures[job_id]`` times."""
    specs = [f"{job_id}:{count}" for job_id, count in failures.items()]
    result = subprocess.run([sys.executable, "-c", _PAYLOADS, *specs], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def send(env: dict[str, str], payload: Any, task_id: str) -> None:
    """Put ``payload`` on the handler's queue, as any broker client could."""
    Celery(broker=env["CELERY_BROKER_URL"]).send_task(QUEUE, args=(payload,), task_id=task_id, queue=QUEUE)


def attempts(env: dict[str, str], job_id: str) -> list[float]:
    """When the handler started each attempt at ``job_id`` (epoch seconds, in order)."""
    path = Path(env["PROTEAN_CELERY_STATE"]) / "attempts.db"
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=30) as conn:
        found = conn.execute("SELECT name FROM sqlite_master WHERE name = 'attempts'").fetchone()
        rows = conn.execute("SELECT at FROM attempts WHERE job_id = ? ORDER BY at", (job_id,)) if found else []
        return [float(row[0]) for row in rows]


def job_saved(env: dict[str, str], job_id: str) -> bool:
    """Whether the handler committed the ``Job`` (its last attempt succeeded)."""
    engine = create_engine(f"sqlite:///{env['PROTEAN_CELERY_STATE']}/flaky.db")
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT count(*) FROM job WHERE job_id = :id"), {"id": job_id}).scalar())
    finally:
        engine.dispose()


def dead_letter(env: dict[str, str], job_id: str) -> DeadLetter | None:
    """The dead letter of ``job_id``'s message, if it was parked."""
    engine = create_engine(f"sqlite:///{env['PROTEAN_CELERY_STATE']}/relay.db")
    try:
        return next((entry for entry in DeadLetters(engine).list(task=QUEUE) if entry.message_id == job_id), None)
    finally:
        engine.dispose()


