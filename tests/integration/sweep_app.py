"""The orders example app with a redelivery sweep fast enough for a test.

A message is republished when it has gone unhandled for 5 s with no copy left,
sweeps run every 2 s, and a message lost twice after being republished is
dead-lettered. Everything else is the example's own configuration.
"""

from __future__ import annotations

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, prepare_databases
from workers.orders.domain import domain

prepare_databases(domain.config)
domain.init(traverse=False)

app = ProteanCelery(domain, redeliver_after=5, sweep_interval=2, redelivery_attempts=2)
