"""A one-handler domain for priority lanes through a real worker (``celery -A tests.integration.lanes_app``).

``Item.record(item_id)`` raises ``ItemRecorded``; ``Tally`` handles it by writing
the item id and the wall-clock time into ``$PROTEAN_CELERY_STATE/tally.db``
(a connection of its own, committed at once), so the order and the moment each
message was handled can be read back. ``LANES=1`` enables Protean's
``[server.priority_lanes]`` (threshold 0: ``LOW`` and ``BULK`` go to the backfill lane);
``TALLY_WORK_MS`` makes each handling take that long (default 0).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from protean import Domain, handle
from protean.core.aggregate import BaseAggregate
from protean.core.event import BaseEvent
from protean.core.event_handler import BaseEventHandler
from protean.fields import Identifier

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery

STATE = Path(os.environ.get("PROTEAN_CELERY_STATE", ".state")).resolve()
TALLY = STATE / "tally.db"
WORK_SECONDS = float(os.environ.get("TALLY_WORK_MS", "0")) / 1000


class Item(BaseAggregate):
    item_id = Identifier(identifier=True)

    @classmethod
    def record(cls, item_id: str) -> Item:
        item = cls(item_id=item_id)
        item.raise_(ItemRecorded(item_id=item_id))
        return item


class ItemRecorded(BaseEvent):
    item_id = Identifier(identifier=True)


class Tally(BaseEventHandler):
    @handle(ItemRecorded)
    def recorded(self, event: ItemRecorded) -> None:
        if WORK_SECONDS:
            time.sleep(WORK_SECONDS)
        with sqlite3.connect(TALLY, timeout=30) as conn:
            conn.execute("INSERT INTO tally (item_id, at) VALUES (?, ?)", (str(event.item_id), time.time()))


def create_tally() -> None:
    """Create the (empty) tally table."""
    with sqlite3.connect(TALLY, timeout=30) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS tally (seq INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT, at REAL)")


STATE.mkdir(parents=True, exist_ok=True)
domain = Domain(name="lanes", root_path=str(Path(__file__).parent))
domain.config["enable_outbox"] = True
domain.config["server"]["default_subscription_type"] = "stream"
domain.config["server"]["priority_lanes"] = {"enabled": os.environ.get("LANES") == "1", "threshold": 0}
domain.config["databases"] = {"default": {"provider": "sqlite", "database_uri": f"sqlite:///{STATE}/lanes.db"}}
domain.config["event_store"] = {"provider": "sqlalchemy", "database_uri": f"sqlite:///{STATE}/lanes.db"}
domain.config["custom"] = {"celery": {"state_database_uri": f"sqlite:///{STATE}/relay.db", "relay_batch_size": 500}}
domain.register(Item)
domain.register(ItemRecorded, part_of=Item)
domain.register(Tally, part_of=Item)
domain.init(traverse=False)

app = ProteanCelery(domain)
