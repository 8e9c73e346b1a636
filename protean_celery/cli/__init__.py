"""``celery -A app protean …``: registered through the ``celery.commands`` entry point.

Sub-commands: ``topology``, ``check``, ``status``, ``drain``, ``db setup|setup-outbox|drop|truncate``,
``dlq list|inspect|replay|replay-all|purge``, ``outbox status|list|requeue``, ``deadlines list|cancel``,
``metrics``,
``health --liveness|--readiness``.

A user error (bad setting, unreachable broker or database, missing tables, unknown id)
prints one line that names the fix and exits 1 (``cli/errors.py``); so does a
configuration error while ``-A`` loads the app (``cli/loading.py``).
"""

from __future__ import annotations

import click

from protean_celery.cli.check import check
from protean_celery.cli.db import db
from protean_celery.cli.deadlines import deadlines
from protean_celery.cli.dlq import dlq
from protean_celery.cli.drain import drain
from protean_celery.cli.errors import ProteanGroup
from protean_celery.cli.health import health
from protean_celery.cli.loading import app_of, guard_app_loading, help_requested
from protean_celery.cli.metrics import metrics
from protean_celery.cli.outbox import outbox
from protean_celery.cli.status import status
from protean_celery.cli.topology import topology

__all__ = ["protean", "app_of", "help_requested"]

guard_app_loading()


@click.group(name="protean", cls=ProteanGroup)
@click.pass_context
def protean(ctx: click.Context) -> None:
    """Protean domain tooling for this Celery app."""


protean.add_command(topology)
protean.add_command(check)
protean.add_command(db)
protean.add_command(dlq)
protean.add_command(status)
protean.add_command(outbox)
protean.add_command(deadlines)
protean.add_command(drain)
protean.add_command(metrics)
protean.add_command(health)
