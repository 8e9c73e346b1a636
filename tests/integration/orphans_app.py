"""The orders example on Message DB, its pool children killed between the two commits.

``celery -A tests.integration.orphans_app worker|beat`` with ``PROTEAN_ENV=messagedb``.
``ORPHANS_CRASH_AFTER`` lists event type names (``OrderPlaced,OrderCompleted``):
the first append of each, in any worker child, is followed by a ``kill -9`` of
that child right after the append committed in Message DB and before the Unit of
Work commits the aggregate rows, outbox rows and inbox marker. Once per type: the
kill leaves a file in ``ORPHANS_MARKS``. ``ORPHANS_OUTBOX=0`` turns the outbox off
(events are then relayed from the event store).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from protean.adapters.event_store.message_db import MessageDBStore

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, prepare_databases
from workers.orders.domain import domain

CRASH_AFTER = {name for name in os.environ.get("ORPHANS_CRASH_AFTER", "").split(",") if name}
MARKS = Path(os.environ.get("ORPHANS_MARKS", "."))

_append = MessageDBStore._write


def _append_then_crash(self, stream_name, message_type, data, metadata=None, expected_version=None):  # type: ignore
    position = _append(self, stream_name, message_type, data, metadata, expected_version)
    name = message_type.split(".")[1] if "." in message_type else message_type
    if name in CRASH_AFTER and _first(name):
        os.kill(os.getpid(), signal.SIGKILL)  # the events are in Message DB; nothing else committed
    return position


def _first(name: str) -> bool:
    try:
        os.close(os.open(MARKS / f"crashed-{name}", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


MessageDBStore._write = _append_then_crash  # type: ignore[method-assign]

if os.environ.get("ORPHANS_OUTBOX") == "0":
    domain.config["enable_outbox"] = False
    domain.config["server"]["default_subscription_type"] = "event_store"
prepare_databases(domain.config)
domain.init(traverse=False)

app = ProteanCelery(domain)
