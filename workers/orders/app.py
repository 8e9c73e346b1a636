"""The Celery app of the orders example.

    celery -A workers.orders.app worker -c 2      # handlers and process manager
    celery -A workers.orders.app beat             # relay ticks
    celery -A workers.orders.app protean topology

The broker comes from Celery's configuration (``CELERY_BROKER_URL``) or from
``[custom.celery] broker_url`` in ``domain.toml``; ``python -m workers.orders.run``
starts an embedded Redis and sets it for you.
"""

from __future__ import annotations

from celery import Celery

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, init_domain, prepare_databases
from protean_celery.cli import help_requested
from workers.orders.domain import domain

app: Celery
if help_requested():
    # `celery -A workers.orders.app … --help` imports this module too: answer
    # without creating the state folder or connecting to a database.
    app = Celery("protean.orders")
else:
    prepare_databases(domain.config)
    init_domain(domain, traverse=False)  # domain.init(), errors without passwords
    app = ProteanCelery(domain)
