"""The orders example app, tuned so a crash is recovered within seconds, not an hour.

* Redis redelivers a message a killed worker had reserved after 60 s (the
  smallest ``visibility_timeout`` protean-celery accepts), swept every 2 s;
* an outbox claim held by a relay that died is retaken after 6 s;
* a message Redis lost (a server or worker killed between BRPOP and its unacked
  record) is republished by the redelivery sweep 15 s after it was relayed
  (sweeps every 5 s).

Everything else is the example's own configuration.
"""

from __future__ import annotations

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, prepare_databases
from workers.orders.domain import domain

prepare_databases(domain.config)
domain.init(traverse=False)

app = ProteanCelery(
    domain,
    visibility_timeout=60,
    lock_minutes=0.1,
    redeliver_after=15,
    sweep_interval=5,
    config={
        "broker_transport_options": {
            "visibility_timeout": 60,
            "unacked_restore_interval": 2,
            "unacked_restore_throttle": 1,
            "confirm_publish": True,
        },
    },
)
