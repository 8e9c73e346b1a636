"""The Celery app of the orders example.

    celery -A workers.orders.app worker -c 2      # handlers and process manager
    celery -A workers.orders.app beat             # relay ticks
    celery -A workers.orders.app protean topology

The broker comes from Celery's configuration (``CELERY_BROKER_URL``) or from
``[custom.celery] broker_url`` in ``domain.toml``; ``python -m workers.orders.run``
starts an embedded Redis and sets it for you.
"""

from __future__ import annotations

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, init_domain, prepare_databases
from workers.orders.domain import domain

prepare_databases(domain.config)
init_domain(domain, traverse=False)  # domain.init(), errors without passwords

app = ProteanCelery(domain)
