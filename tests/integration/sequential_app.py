"""``sequential_by`` and ``origin_stream`` through a real worker (``celery -A tests.integration.sequential_app``).

``Deposited(account_id, key)`` goes to ``Teller`` (``sequential_by="key"``), which
records when it started and ended each message in ``$PROTEAN_CELERY_STATE/teller.db``
(a connection of its own) and takes ``TELLER_WORK_MS`` (default 300) in between,
and to ``Auditor`` (``source_stream = "seq::branch"``), which records each message
it handles. The domain runs on PostgreSQL (``SEQ_DATABASE_URL``), where only the
inbox's advisory lock serialises handlers.

    python -m tests.integration.sequential_app queue k1 k1 k2 -   # one Deposited per key; "-" has no key
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path

from protean import Domain, handle
from protean.core.aggregate import BaseAggregate
from protean.core.event import BaseEvent
from protean.core.event_handler import BaseEventHandler
from protean.core.unit_of_work import UnitOfWork
from protean.fields import Identifier, String
from protean.utils.eventing import Message

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, storage

STATE = Path(os.environ.get("PROTEAN_CELERY_STATE", ".state")).resolve()
RECORDS = STATE / "teller.db"
WORK_SECONDS = float(os.environ.get("TELLER_WORK_MS", "300")) / 1000


class Account(BaseAggregate):
    account_id = Identifier(identifier=True)


class Deposited(BaseEvent):
    account_id = Identifier(identifier=True)
    key = String()


class Teller(BaseEventHandler):
    @handle(Deposited)
    def deposited(self, event: Deposited) -> None:
        started = time.time()
        time.sleep(WORK_SECONDS)
        _record("teller", str(event.account_id), event.key, started)


class Auditor(BaseEventHandler):
    @handle(Deposited)
    def deposited(self, event: Deposited) -> None:
        _record("auditor", str(event.account_id), event.key, time.time())


def _record(handler: str, account_id: str, key: str | None, started: float) -> None:
    with sqlite3.connect(RECORDS, timeout=30) as conn:
        conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)", (handler, account_id, key, started, time.time()))


def runs(handler: str) -> list[tuple[str, str | None, float, float]]:
    """What ``handler`` handled: ``(account_id, key, started, ended)``, by start time."""
    with sqlite3.connect(RECORDS, timeout=30) as conn:
        return list(conn.execute("SELECT account_id, key, started, ended FROM runs WHERE handler = ? ORDER BY started",
                                 (handler,)))


STATE.mkdir(parents=True, exist_ok=True)
domain = Domain(name="seq", root_path=str(Path(__file__).parent))
domain.config["enable_outbox"] = True
domain.config["server"]["default_subscription_type"] = "stream"
_url = os.environ.get("SEQ_DATABASE_URL", f"sqlite:///{STATE}/seq.db")
domain.config["databases"] = {"default": {"provider": "postgresql" if _url.startswith("postgresql") else "sqlite",
                                          "database_uri": _url}}
domain.config["event_store"] = {"provider": "sqlalchemy", "database_uri": _url}
domain.config["custom"] = {"celery": {"state_database_uri": f"sqlite:///{STATE}/relay.db"}}
domain.register(Account)
domain.register(Deposited, part_of=Account)
domain.register(Teller, part_of=Account, sequential_by="key")
domain.register(Auditor, part_of=Account, source_stream="seq::branch")
domain.init(traverse=False)

app = ProteanCelery(domain)


def _queue(keys: list[str]) -> None:
    """Set up the tables, then record one ``Deposited`` per key ("-": none) and relay them (no fast path)."""
    storage.setup(app.domain, app.runtime.state)
    with sqlite3.connect(RECORDS, timeout=30) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS runs (handler TEXT, account_id TEXT, key TEXT, started REAL, "
                     "ended REAL)")
    app.runtime.settings = replace(app.runtime.settings, nudge=False)
    with app.domain.domain_context():
        with UnitOfWork():
            for number, key in enumerate(keys):
                if key != "-":
                    app.domain.repository_for(Account).add(_deposit(f"a{number}", key))
        while app.relay().events:
            pass
        # Protean's commit refuses an event without its sequential_by key, so a keyless one can only come from
        # elsewhere (another publisher, or from before sequential_by was declared): published as such a one is.
        with app.producer_or_acquire() as producer:
            for number, key in enumerate(keys):
                if key == "-":
                    message = Message.from_domain_object(_deposit(f"a{number}", None)._events[-1])
                    app.runtime.relay.publish(message, "seq::account", producer)


def _deposit(account_id: str, key: str | None) -> Account:
    account = Account(account_id=account_id)
    account.raise_(Deposited(account_id=account_id, key=key))
    return account


if __name__ == "__main__" and sys.argv[1:2] == ["queue"]:
    _queue(sys.argv[2:])
