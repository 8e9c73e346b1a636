"""Lose a message on Redis and watch the redelivery sweep bring it back.

Run as a script with CELERY_BROKER_URL and PROTEAN_CELERY_STATE set, while a
worker of ``tests.integration.sweep_app`` consumes every queue but the process
manager's. ``lose`` places an order, waits until its OrderPlaced event sits in
the process manager's queue, then sweeps (it is queued: watched, not
republished), deletes the queue's Redis list (the message is lost), sweeps
(republished), loses it twice more (republished, then dead-lettered as
MessageLost), and replays the dead letter (the sweep watches the copy). ``finish`` (with a worker on every
queue) waits for the saga and the ledger to empty, then sweeps with every relayed message old
enough (nothing may be republished). Each step prints one line the test reads.
"""

import sys
import time
from datetime import UTC, datetime, timedelta

import redis

from protean_celery import storage
from tests.integration.sweep_app import app
from workers.orders.domain import Order, PlaceOrder

domain = app.domain
SAGA = app.topology.route("protean.orders.OrderFulfillment")


def wait(predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(what)


def client():
    return redis.Redis.from_url(app.conf.broker_url)


def sweep(step):
    # As if redeliver_after had passed since the order was placed (rather than sleeping that long).
    report = app.runtime.sweep.run(now=datetime.now(UTC) + timedelta(seconds=app.settings.redeliver_after + 1))
    print(f"{step}: {report.as_dict()} queued {client().llen(SAGA.queue.name)}", flush=True)


def lose():
    storage.setup(domain, app.runtime.state)
    with domain.domain_context():
        app.process(PlaceOrder(order_id="lost", customer="c", amount=1.0, sku="s", quantity=1, declined=False))
    wait(lambda: client().llen(SAGA.queue.name) == 1, "OrderPlaced in the saga's queue")
    sweep("queued")
    for step in ("lost once", "lost twice", "lost thrice"):
        client().delete(SAGA.queue.name)
        sweep(step)
    entries = app.runtime.dead_letters.list(task=SAGA.task_name)
    print(f"dead letters {len(entries)}: {entries[0].error.split(':')[0] if entries else None}", flush=True)
    app.runtime.replay(entries[0].id, app)
    print(f"replayed, queued {client().llen(SAGA.queue.name)}, watched {app.runtime.ledger.count()}", flush=True)


def finish():
    def completed():
        with domain.domain_context():
            return domain.repository_for(Order)._dao.query.filter(order_id="lost", status="COMPLETED").all().total
    wait(completed, "the saga to complete", timeout=90)
    print("saga completed", flush=True)
    wait(lambda: app.runtime.ledger.count() == 0, "the ledger to empty")
    print(f"watched {app.runtime.ledger.count()}", flush=True)
    # Read every relayed message as old enough: each has its handlers' markers, so nothing is republished.
    later = datetime.now(UTC) + timedelta(seconds=app.settings.redeliver_after + 1)
    print(f"final sweep: {app.runtime.sweep.run(now=later).as_dict()}", flush=True)


{"lose": lose, "finish": finish}[sys.argv[1]]()
