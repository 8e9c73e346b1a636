"""A small domain for operator tests: ``RunJob`` (sleeps, or fails on purpose) -> ``JobRan`` -> a receipt.

Configured by ``domain.toml`` next to this file (SQLite under ``$PROTEAN_CELERY_STATE``).
It registers elements only: ``tests.integration.jobs_app`` initialises it and builds the
app, ``celery -A protean_celery.auto`` finds it through ``PROTEAN_DOMAIN``.
"""

from __future__ import annotations

import os
import time

from protean import Domain, handle
from protean.fields import Boolean, Float, Identifier
from protean.utils.globals import current_domain

domain = Domain(root_path=os.path.dirname(os.path.abspath(__file__)), name="jobs")


@domain.aggregate
class Job:
    job_id = Identifier(identifier=True)


@domain.aggregate
class Receipt:
    job_id = Identifier(identifier=True)


@domain.command(part_of=Job)
class RunJob:
    job_id = Identifier(identifier=True)
    seconds = Float(default=0.0)
    fail = Boolean(default=False)


@domain.event(part_of=Job)
class JobRan:
    job_id = Identifier(identifier=True)


@domain.command_handler(part_of=Job)
class JobCommands:
    @handle(RunJob)
    def run(self, command: RunJob) -> None:
        if command.fail:
            raise ValueError(f"job {command.job_id} fails on purpose")
        time.sleep(command.seconds)
        job = Job(job_id=command.job_id)
        job.raise_(JobRan(job_id=command.job_id))
        current_domain.repository_for(Job).add(job)


@domain.event_handler(part_of=Job)
class Receipts:
    @handle(JobRan)
    def ran(self, event: JobRan) -> None:
        current_domain.repository_for(Receipt).add(Receipt(job_id=event.job_id))
