"""Read back what the jobs domain left in its SQLite database, and run its CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import redis
import sqlalchemy as sa

from tests.integration.orders import ROOT
from tests.support.waiting import broker_idle, wait_until  # noqa: F401  (re-exported for the jobs tests)

APP = "tests.integration.jobs_app"


def celery(env: dict[str, str], *args: str, app: str = APP, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``celery -A app …`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "celery", "-A", app, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def place(env: dict[str, str], *specs: str) -> None:
    """Set up the databases and write ``RunJob`` commands to the event store (nothing relayed)."""
    result = subprocess.run([sys.executable, "-m", "tests.integration.jobs_ops", *specs], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


class JobsState:
    """Counts read from ``jobs.db`` in the state folder."""

    def __init__(self, state: Path) -> None:
        self.engine = sa.create_engine(f"sqlite:///{state}/jobs.db")

    def _scalars(self, query: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(query)).scalars())

    def jobs(self) -> set[str]:
        return set(self._scalars("SELECT job_id FROM job"))

    def receipts(self) -> set[str]:
        return set(self._scalars("SELECT job_id FROM receipt"))

    def job_ran(self) -> Counter[str]:
        """JobRan events per job stream (more than one would be a job handled twice)."""
        return Counter(self._scalars("SELECT stream_name FROM protean_events WHERE type LIKE '%JobRan%'"))

    def markers(self) -> Counter[str]:
        """Inbox markers per handler."""
        return Counter(self._scalars("SELECT handler FROM protean_celery_inbox"))


def jobs_env(redis_url: str, state: Path, db: int) -> dict[str, str]:
    """The environment of the jobs app on Redis database ``db`` (flushed) with its state in ``state``."""
    url = redis_url.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(url).flushdb()
    return {**os.environ, "CELERY_BROKER_URL": url, "PROTEAN_CELERY_STATE": str(state),
            "PROTEAN_NO_AUTO_LOGGING": "1", "PYTHONPATH": str(ROOT)}
