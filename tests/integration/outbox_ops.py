"""Drive the orders example's outbox step by step, as the outbox tests need it.

Run as a script with CELERY_BROKER_URL and PROTEAN_CELERY_STATE set; the
arguments are steps run in order, each printing parseable lines:

    place:ID        set up the tables, handle PlaceOrder(ID) in-process: one pending outbox row (this
                    process "crashes" before its fast path relays the row: only a relay run sends it);
                    prints the row, then each handler task of its message with task id and message key
    claim:WORKER    claim every claimable row as relay WORKER would, then "crash" (never mark them)
    expire          move every claim's locked_until into the past (its lock_minutes ran out)
    relay           one relay run (what a beat tick does)
    fail:N          N relay runs whose publishing always fails, [outbox.retry] max_attempts 5
    protean-fail:N  what Protean's own OutboxProcessor does with max_attempts 5: N failed attempts
                    with max_retries=5 passed to mark_failed but the row's column left at 3
    rows            every row: id, status, retry_count, max_retries
    seed            an old and a recent inbox marker, dead letter and published outbox row
    maintain:DAYS   one maintenance run with dead_letter_retention_days DAYS, then what is left
"""

import dataclasses
import sys
from datetime import UTC, datetime, timedelta

from protean.core.unit_of_work import UnitOfWork
from protean.utils.eventing import Message
from protean.utils.query import Q

from protean_celery import storage
from protean_celery.deadletter import dead_letters_table
from protean_celery.envelope import message_key, task_id
from protean_celery.errors import RelayError
from protean_celery.inbox import inbox_table
from protean_celery.maintenance import maintain
from workers.orders.app import app
from workers.orders.domain import PlaceOrder

domain = app.domain


def repo():
    return domain._get_outbox_repo("default")


def place(order_id):
    storage.setup(domain, app.runtime.state)
    with app.runtime.commits.deferred(), domain.domain_context():
        domain.process(PlaceOrder(order_id=order_id, customer="c", amount=1.0, sku="s", quantity=1, declined=False),
                       asynchronous=False)
    app.runtime.commits.take()  # never relayed by this process
    with domain.domain_context():
        for row in repo()._dao.query.filter(status="pending").all().items:
            print("row", row.id, row.type)
            message = Message(data=row.data, metadata=row.metadata_)
            for route in app.topology.targets(row.metadata_.domain.stream_category, row.type):
                key = message_key(message)
                print("task", route.task_name, task_id(route.task_name, key), key)


def claim(worker):
    with domain.domain_context():
        for row in repo().claim_batch(worker, 50):
            print("claimed", row.id, row.locked_by)


def expire():
    with domain.domain_context():
        past = domain.clock.now() - timedelta(minutes=1)
        print("expired", repo()._dao._update_all(Q(status="processing"), locked_until=past))


def relay():
    report = app.relay()
    print("relayed", report.events, "failed", report.failed)


def fail(runs):
    def broken(*args, **kwargs):
        raise RelayError("broker refused the message")

    app.runtime.relay.publish = broken
    domain.config["outbox"]["retry"]["max_attempts"] = 5
    domain.config["outbox"]["retry"]["base_delay_seconds"] = 0  # retry at once
    for run in range(int(runs)):
        report = app.relay()
        print("run", run + 1, "failed", report.failed)
    rows()


def protean_fail(attempts):
    with domain.domain_context():
        for _ in range(int(attempts)):
            for row in repo().claim_batch("protean-processor", 50):
                with UnitOfWork():
                    fresh = repo().get(row.id)
                    fresh.mark_failed(RuntimeError("broker down"), base_delay_seconds=0, max_retries=5)
                    repo().add(fresh)
    rows()


def rows():
    with domain.domain_context():
        for row in repo()._dao.query.all().items:
            print("status", row.id, row.status, row.retry_count, row.max_retries)


def seed():
    storage.setup(domain, app.runtime.state)
    now = datetime.now(UTC)
    old, recent = now - timedelta(hours=200), now - timedelta(hours=1)
    with app.runtime.inbox.engine.begin() as conn:
        for key, at in (("old-marker", old), ("recent-marker", recent)):
            conn.execute(inbox_table.insert().values(message_key=key, handler="H", processed_at=at))
    letters = app.runtime.dead_letters
    for name, at in (("old-letter", now - timedelta(days=40)), ("recent-letter", now - timedelta(days=1))):
        entry = letters.park("protean.orders.OrderFulfillment", {"name": name}, RuntimeError(name))
        with letters.engine.begin() as conn:
            conn.execute(dead_letters_table.update().where(dead_letters_table.c.id == entry).values(last_failed_at=at))
    for order_id, at in (("old-row", old), ("recent-row", recent)):
        place(order_id)
        with domain.domain_context():
            row = repo()._dao.query.filter(status="pending").all().items[0]
            repo()._dao._update_all(Q(id=row.id), status="published", published_at=at)


def maintenance(days):
    app.runtime.settings = dataclasses.replace(app.runtime.settings, dead_letter_retention_days=float(days))
    print("report", sorted(maintain(app.runtime).items()))
    with app.runtime.inbox.engine.connect() as conn:
        print("markers", sorted(key for (key,) in conn.execute(inbox_table.select().with_only_columns(
            inbox_table.c.message_key))))
    print("letters", sorted(entry.payload["name"] for entry in app.runtime.dead_letters.list()))
    with domain.domain_context():
        print("outbox", sorted(row.stream_name for row in repo()._dao.query.all().items))


STEPS = {"place": place, "claim": claim, "expire": expire, "relay": relay, "fail": fail,
         "protean-fail": protean_fail, "rows": rows, "seed": seed, "maintain": maintenance}

for step in sys.argv[1:]:
    name, _, argument = step.partition(":")
    STEPS[name](*([argument] if argument else []))
    sys.stdout.flush()
