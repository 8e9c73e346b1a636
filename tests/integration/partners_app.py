"""A domain whose only entry point is a broker subscriber on a Redis Streams broker, for real-worker tests.

``PartnerFeed`` reads stream ``partner_orders`` of the Protean broker ``partners``
(provider ``redis``, at ``$PARTNER_REDIS_URL``). For each message it records
the attempt in ``$PROTEAN_CELERY_STATE/attempts.db`` (its own connection,
committed at once, so it survives a rollback) and saves a ``Receipt`` with the
message's ``ref`` in the subscriber's Unit of Work. A ``ref`` starting with
``poison`` always raises. A ``ref`` handled twice would leave two receipts.

Retries come from Protean's ``[server.broker_subscription]``: 2 retries, 0.2 s
apart at first. Beat ticks every second; the sweep and the stream reclaim are
quick, so a killed worker's messages come back within seconds.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from protean import Domain
from protean.core.aggregate import BaseAggregate
from protean.core.subscriber import BaseSubscriber
from protean.fields import String
from protean.utils.globals import current_domain

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery

STATE = Path(os.environ.get("PROTEAN_CELERY_STATE", ".state")).resolve()
STREAM = "partner_orders"
MAX_RETRIES, RETRY_DELAY = 2, 0.2


class Receipt(BaseAggregate):
    ref = String(max_length=100, required=True)


class PartnerFeed(BaseSubscriber):
    def __call__(self, payload: dict[str, Any]) -> None:
        ref = str(payload["ref"])
        record_attempt(ref)
        if ref.startswith("poison"):
            raise ValueError(f"partner order {ref} cannot be read")
        current_domain.repository_for(Receipt).add(Receipt(ref=ref))


def record_attempt(ref: str) -> None:
    """Record one attempt at ``ref`` now."""
    with sqlite3.connect(STATE / "attempts.db", timeout=30) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS attempts (ref TEXT, at REAL)")
        conn.execute("INSERT INTO attempts VALUES (?, ?)", (ref, time.time()))


STATE.mkdir(parents=True, exist_ok=True)
domain = Domain(name="partners", root_path=str(Path(__file__).parent))
domain.config["enable_outbox"] = True
domain.config["server"]["default_subscription_type"] = "stream"
domain.config["server"]["broker_subscription"] = {"max_retries": MAX_RETRIES, "retry_delay_seconds": RETRY_DELAY}
domain.config["brokers"] = {
    "default": {"provider": "inline"},
    "partners": {"provider": "redis", "URI": os.environ.get("PARTNER_REDIS_URL", "redis://127.0.0.1:6379/8")},
}
domain.config["databases"] = {"default": {"provider": "sqlite", "database_uri": f"sqlite:///{STATE}/partners.db"}}
domain.config["event_store"] = {"provider": "sqlalchemy", "database_uri": f"sqlite:///{STATE}/partners.db"}
domain.config["custom"] = {"celery": {
    "state_database_uri": f"sqlite:///{STATE}/relay.db", "subscriber_reclaim_seconds": 2,
    "sweep_interval": 1, "redeliver_after": 5,
}}
domain.register(Receipt)
domain.register(PartnerFeed, broker="partners", stream=STREAM)
domain.init(traverse=False)

app = ProteanCelery(domain)
