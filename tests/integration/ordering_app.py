"""Ordered lanes through a real worker (``celery -A tests.integration.ordering_app``), on PostgreSQL.

``Bumped(account_id, seq)`` goes to two event handlers that record, in the
handler's own Unit of Work, the order they saw each account's bumps in
(``ordering_seen``, an identity column): ``InOrder`` is ordered
(``[custom.celery.handlers.InOrder] ordered = true``), ``AnyOrder`` is not.
``Counted(account_id, sku)`` goes to two projectors that count per ``sku`` with a
read-modify-write: ``Tallies`` is ordered (serialised by the projection's
identifier, ``sku``), ``LooseTallies`` is not (serialised by correlation id only).

    python -m tests.integration.ordering_app queue KEYS ROUNDS BURST COUNTED
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

from protean import Domain, handle
from protean.core.aggregate import BaseAggregate
from protean.core.event import BaseEvent
from protean.core.event_handler import BaseEventHandler
from protean.core.projection import BaseProjection
from protean.core.projector import BaseProjector, on
from protean.core.unit_of_work import UnitOfWork
from protean.fields import Identifier, Integer, String
from protean.utils.globals import current_domain, current_uow
from sqlalchemy import text

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, storage

STATE = Path(os.environ.get("PROTEAN_CELERY_STATE", ".state")).resolve()
WORK_SECONDS = float(os.environ.get("ORDERING_WORK_MS", "2")) / 1000
#: Between a tally's read and its write: wide enough for two children to overlap on one row.
TALLY_SECONDS = 0.02


class Account(BaseAggregate):
    account_id = Identifier(identifier=True)


class Bumped(BaseEvent):
    account_id = Identifier(identifier=True)
    seq = Integer(required=True)


class Counted(BaseEvent):
    account_id = Identifier(identifier=True)
    sku = String(required=True)


def _saw(handler: str, event: Bumped) -> None:
    time.sleep(random.random() * WORK_SECONDS)
    session = current_uow.get_session("default")
    session.execute(text("INSERT INTO ordering_seen (handler, key, seq) VALUES (:h, :k, :s)"),
                    {"h": handler, "k": str(event.account_id), "s": int(event.seq)})


class InOrder(BaseEventHandler):
    @handle(Bumped)
    def bumped(self, event: Bumped) -> None:
        _saw("InOrder", event)


class AnyOrder(BaseEventHandler):
    @handle(Bumped)
    def bumped(self, event: Bumped) -> None:
        _saw("AnyOrder", event)


class Tally(BaseProjection):
    sku = Identifier(identifier=True)
    count = Integer(default=0)


class LooseTally(BaseProjection):
    sku = Identifier(identifier=True)
    count = Integer(default=0)


def _count(projection: type, sku: str) -> None:
    repo = current_domain.repository_for(projection)
    found = repo._dao.query.filter(sku=sku).all().items
    row = found[0] if found else projection(sku=sku, count=0)
    time.sleep(TALLY_SECONDS)
    row.count += 1
    repo.add(row)


class Tallies(BaseProjector):
    @on(Counted)
    def counted(self, event: Counted) -> None:
        _count(Tally, event.sku)


class LooseTallies(BaseProjector):
    @on(Counted)
    def counted(self, event: Counted) -> None:
        _count(LooseTally, event.sku)


STATE.mkdir(parents=True, exist_ok=True)
domain = Domain(name="ordq", root_path=str(Path(__file__).parent))
domain.config["enable_outbox"] = True
domain.config["server"]["default_subscription_type"] = "stream"
_url = os.environ.get("ORDERING_DATABASE_URL", f"sqlite:///{STATE}/ordq.db")
domain.config["databases"] = {"default": {"provider": "postgresql" if _url.startswith("postgresql") else "sqlite",
                                          "database_uri": _url}}
domain.config["event_store"] = {"provider": "sqlalchemy", "database_uri": _url}
_ordered = {"ordered": True}
domain.config["custom"] = {"celery": {
    "state_database_uri": f"sqlite:///{STATE}/relay.db",
    "handlers": {"InOrder": _ordered, "Tallies": _ordered},
    "ordering_retries": int(os.environ.get("ORDERING_RETRIES", "100")),
}}
domain.register(Account)
domain.register(Bumped, part_of=Account)
domain.register(Counted, part_of=Account)
domain.register(InOrder, part_of=Account)
domain.register(AnyOrder, part_of=Account)
domain.register(Tally)
domain.register(LooseTally)
domain.register(Tallies, projector_for=Tally, aggregates=[Account])
domain.register(LooseTallies, projector_for=LooseTally, aggregates=[Account])
domain.init(traverse=False)

app = ProteanCelery(domain)


def _queue(keys: int, rounds: int, burst: int, counted: int) -> None:
    """Record ``rounds`` bursts of ``burst`` bumps per account, round by round, then ``counted`` Counted events.

    Each Unit of Work's events are published right after its commit (the fast
    path), in commit order; with ``ORDERING_RELAY=backlog`` they are left to one
    relay run at the end, which claims the outbox in no particular order.
    """
    storage.setup(app.domain, app.runtime.state)
    with app.runtime.inbox.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS ordering_seen (id BIGSERIAL PRIMARY KEY, handler TEXT, "
                          "key TEXT, seq INTEGER)"))
    fast = os.environ.get("ORDERING_RELAY", "fast") == "fast"
    app.runtime.settings = replace(app.runtime.settings, nudge=fast)
    with app.domain.domain_context():
        repo = app.domain.repository_for(Account)
        for round_ in range(rounds):
            for key in range(keys):
                with UnitOfWork():
                    account = Account(account_id=f"a{key}") if round_ == 0 else repo.get(f"a{key}")
                    for number in range(burst):
                        account.raise_(Bumped(account_id=f"a{key}", seq=round_ * burst + number))
                    repo.add(account)
                app.runtime.nudge()
        for number in range(counted):  # one Unit of Work each: a correlation chain each
            with UnitOfWork():
                account = repo.get(f"a{number % keys}")
                # Five rows, each counted by a run of neighbours in the queue: children overlap on one row.
                account.raise_(Counted(account_id=account.account_id, sku=f"s{number * 5 // counted}"))
                repo.add(account)
            app.runtime.nudge()
        app.runtime.commits.flush(timeout=60)
        while app.relay().events:
            pass


if __name__ == "__main__" and sys.argv[1:2] == ["queue"]:
    _queue(*(int(value) for value in sys.argv[2:6]))
