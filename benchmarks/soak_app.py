"""The orders example app with maintenance on a short retention, for ``benchmarks/soak.py``.

Everything the soak watches is pruned within about ``SOAK_RETENTION_SECONDS``
(default 120) plus one maintenance tick (``SOAK_MAINTENANCE_SECONDS``, default 15):

* inbox markers (``inbox_retention_hours``): just above the 60 s visibility
  timeout, the shortest window the settings accept;
* published outbox rows (``[outbox.cleanup] published_retention_hours``);
* dead letters (``dead_letter_retention_days``);
* redelivery ledger entries leave when handled, or at ``sweep_horizon_hours``.

A retention this short is for the soak only: a message redelivered after its
marker was pruned is handled again (see ``docs/guides/operations.md``).
"""

from __future__ import annotations

import os

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, prepare_databases
from workers.orders.domain import domain

RETENTION = float(os.environ.get("SOAK_RETENTION_SECONDS", "120"))
MAINTENANCE = float(os.environ.get("SOAK_MAINTENANCE_SECONDS", "15"))

outbox = domain.config["outbox"]
outbox["cleanup"] = {**(outbox.get("cleanup") or {}), "published_retention_hours": RETENTION / 3600}
prepare_databases(domain.config)
domain.init(traverse=False)

app = ProteanCelery(
    domain,
    visibility_timeout=60,
    lock_minutes=0.1,
    maintenance_interval=MAINTENANCE,
    inbox_retention_hours=RETENTION / 3600,
    dead_letter_retention_days=RETENTION / 86400,
    redeliver_after=20,
    sweep_interval=10,
    sweep_horizon_hours=RETENTION / 2 / 3600,
    config={"broker_transport_options": {"visibility_timeout": 60}},
)
