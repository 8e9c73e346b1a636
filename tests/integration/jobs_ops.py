"""Set up the jobs database and place ``RunJob`` commands with no worker running.

    python -m tests.integration.jobs_ops [--relay] j1 j2:fail j3:2.0

Each argument is ``job_id`` or ``job_id:fail`` or ``job_id:<seconds>``. Commands are
only written to the event store (nothing is relayed here) unless ``--relay`` is
given: then they are published to the broker at once. Run with CELERY_BROKER_URL
and PROTEAN_CELERY_STATE set.
"""

import sys

from protean_celery import storage
from tests.integration.jobs import RunJob
from tests.integration.jobs_app import app


def command(spec: str) -> RunJob:
    job_id, _, option = spec.partition(":")
    if option == "fail":
        return RunJob(job_id=job_id, fail=True)
    return RunJob(job_id=job_id, seconds=float(option or 0))


relay = "--relay" in sys.argv
storage.setup(app.domain, app.runtime.state)
with app.domain.domain_context():
    for spec in (arg for arg in sys.argv[1:] if arg != "--relay"):
        app.domain.process(command(spec))
if relay:
    app.relay()
