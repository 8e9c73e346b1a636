"""The orders example in Protean's default delivery: outbox off, event store subscriptions.

``celery -A tests.integration.outbox_off_app worker|beat``. Events reach only the
event store; the relay reads them from there (``protean_celery.outbox.events``).
``OUTBOX_OFF_NUDGE=0`` turns the fast path off, so only beat ticks relay.
"""

from __future__ import annotations

import os

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, prepare_databases
from workers.orders.domain import domain

domain.config["enable_outbox"] = False
domain.config["server"]["default_subscription_type"] = "event_store"
prepare_databases(domain.config)
domain.init(traverse=False)

app = ProteanCelery(domain, nudge=os.environ.get("OUTBOX_OFF_NUDGE", "1") == "1")
