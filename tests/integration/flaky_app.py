"""A one-handler domain whose handler fails on purpose, for real-worker retry and checksum tests.

``RunJob(job_id, failures)`` goes to ``JobRunner``, which records every attempt
(job id and wall-clock time) in ``$PROTEAN_CELERY_STATE/attempts.db`` on a
connection of its own, committed at once, so a failed attempt's row survives the
handler's rollback. It raises ``RuntimeError`` on its first ``failures``
attempts, then saves the ``Job``.

Retries come from Protean's own handler settings (``[server.subscriptions.JobRunner]``,
read through ``ConfigResolver``): 3 retries, 0.5 s apart at first, doubling.
``FLAKY_ACCEPT_UNSIGNED=1`` builds the app with ``[custom.celery] accept_unsigned``;
``FLAKY_TRACE_URL`` makes Protean's default broker that Redis, where its trace events go.
``FLAKY_DATABASE_URL`` puts the jobs, the inbox and the event store on that PostgreSQL
database (the dead letters stay in SQLite) with a transient-retry budget of 2.
``FLAKY_SIGNING=<dir>`` with message signing by ``<dir>/key.pem``, ``<dir>/cert.pem``,
trusting the certificates in ``<dir>/store`` (``tests/support/signing.py`` writes them).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from protean import Domain, handle
from protean.core.aggregate import BaseAggregate
from protean.core.command import BaseCommand
from protean.core.command_handler import BaseCommandHandler
from protean.fields import Identifier, Integer
from protean.utils.globals import current_domain

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery

STATE = Path(os.environ.get("PROTEAN_CELERY_STATE", ".state")).resolve()
ATTEMPTS = STATE / "attempts.db"
MAX_RETRIES, RETRY_DELAY = 3, 0.5


class Job(BaseAggregate):
    job_id = Identifier(identifier=True)


class RunJob(BaseCommand):
    job_id = Identifier(identifier=True)
    failures = Integer(default=0)


class JobRunner(BaseCommandHandler):
    @handle(RunJob)
    def run(self, command: RunJob) -> None:
        attempt = record_attempt(str(command.job_id))
        if attempt <= (command.failures or 0):
            raise RuntimeError(f"job {command.job_id} fails on purpose (attempt {attempt})")
        current_domain.repository_for(Job).add(Job(job_id=command.job_id))


def record_attempt(job_id: str) -> int:
    """Record one attempt at ``job_id`` now; returns how many there have been, this one included."""
    with sqlite3.connect(ATTEMPTS, timeout=30) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS attempts (job_id TEXT, at REAL)")
        conn.execute("INSERT INTO attempts VALUES (?, ?)", (job_id, time.time()))
        return int(conn.execute("SELECT count(*) FROM attempts WHERE job_id = ?", (job_id,)).fetchone()[0])


STATE.mkdir(parents=True, exist_ok=True)
domain = Domain(name="flaky", root_path=str(Path(__file__).parent))
domain.config["enable_outbox"] = True
domain.config["command_processing"] = "async"
domain.config["server"]["default_subscription_type"] = "stream"
domain.config["server"]["subscriptions"] = {
    "JobRunner": {"max_retries": MAX_RETRIES, "retry_delay_seconds": RETRY_DELAY}
}
domain.config["databases"] = {"default": {"provider": "sqlite", "database_uri": f"sqlite:///{STATE}/flaky.db"}}
domain.config["event_store"] = {"provider": "sqlalchemy", "database_uri": f"sqlite:///{STATE}/flaky.db"}
domain.config["custom"] = {"celery": {"state_database_uri": f"sqlite:///{STATE}/relay.db"}}
if os.environ.get("FLAKY_TRACE_URL"):  # Protean's trace events go to this Redis (tests/integration/test_traces.py)
    domain.config["brokers"] = {"default": {"provider": "redis", "URI": os.environ["FLAKY_TRACE_URL"]}}
if url := os.environ.get("FLAKY_DATABASE_URL"):  # the job and the inbox on PostgreSQL, dead letters still in relay.db
    domain.config["databases"] = {"default": {"provider": "postgresql", "database_uri": url}}
    domain.config["event_store"] = {"provider": "sqlalchemy", "database_uri": url}
    domain.config["custom"]["celery"]["handlers"] = {"JobRunner": {"transient_retries": 2}}
domain.register(Job)
domain.register(RunJob, part_of=Job)
domain.register(JobRunner, part_of=Job)
domain.init(traverse=False)

SIGNING = Path(os.environ["FLAKY_SIGNING"]) if os.environ.get("FLAKY_SIGNING") else None
signing = {"security_key": str(SIGNING / "key.pem"), "security_certificate": str(SIGNING / "cert.pem"),
           "security_cert_store": str(SIGNING / "store")} if SIGNING else {}
app = ProteanCelery(domain, accept_unsigned=os.environ.get("FLAKY_ACCEPT_UNSIGNED") == "1", **signing)
