"""The jobs test domain's Celery app (``celery -A tests.integration.jobs_app …``)."""

from __future__ import annotations

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, prepare_databases
from tests.integration.jobs import domain

prepare_databases(domain.config)
domain.init(traverse=False)

app = ProteanCelery(domain)
