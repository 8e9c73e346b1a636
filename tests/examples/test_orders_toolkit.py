"""The orders example tested with the toolkit: drain, process_and_wait, and parity
with a real `celery worker -c 2` on Redis (same scenarios, same outcomes)."""

import copy
import time

import pytest
import sqlalchemy as sa

from protean_celery.testing import drain, process_and_wait
from tests.examples.saga_facts import COMPENSATED, COMPLETED, saga_facts
from tests.integration.orders import rows, run_orders

STEPS_COMPLETED = ["on_order_placed", "on_inventory_reserved", "on_payment_confirmed", "on_shipment_delivered"]
STEPS_COMPENSATED = ["on_order_placed", "on_inventory_reserved", "on_payment_declined"]


def _place(order_id, declined=False):
    from workers.orders.domain import PlaceOrder, domain

    with domain.domain_context():
        return PlaceOrder(
            order_id=order_id, customer="c", amount=12.5, sku="sku-1", quantity=2, declined=declined
        )


def _facts(app, order_id):
    state = app.runtime.state.engine.url.database.rsplit("/", 1)[0]
    return saga_facts(sa.create_engine(f"sqlite:///{state}/domain.db"),
                      sa.create_engine(f"sqlite:///{state}/domain.db"), order_id)


def test_a_completed_saga_with_process_and_wait(protean_celery_app):
    outcome = process_and_wait(protean_celery_app, _place("o-ok"))
    assert outcome.error is None
    names = [type(event).__name__ for event in outcome.events]
    assert "OrderCompleted" in names and "OrderCancelled" not in names
    facts = _facts(protean_celery_app, "o-ok")
    assert facts == {**COMPLETED, "saga_steps": STEPS_COMPLETED}


def test_a_compensated_saga(protean_celery_app):
    with protean_celery_app.domain.domain_context():
        protean_celery_app.process(_place("o-declined", declined=True))
    assert drain(protean_celery_app).satisfied
    assert _facts(protean_celery_app, "o-declined") == {**COMPENSATED, "saga_steps": STEPS_COMPENSATED}


def test_the_process_manager_hears_from_four_aggregates(protean_celery_app):
    process_and_wait(protean_celery_app, _place("o-4"))
    with protean_celery_app.domain.domain_context():
        store = protean_celery_app.domain.event_store.store
        category_of = {
            m.metadata.headers.id: m.metadata.domain.stream_category
            for category in ("orders::order", "orders::inventory", "orders::payment", "orders::shipment")
            for m in store.read(category)
        }
        heard = [category_of[m.metadata.domain.causation_id] for m in store.read("orders::order_fulfillment-o-4")]
    assert heard == ["orders::order", "orders::inventory", "orders::payment", "orders::shipment"]


def test_fifty_sagas_drain_in_one_call(protean_celery_app):
    with protean_celery_app.domain.domain_context():
        for number in range(50):
            protean_celery_app.process(_place(f"o-{number}", declined=number % 10 == 0))
    started = time.perf_counter()
    report = drain(protean_celery_app)
    elapsed = time.perf_counter() - started
    print(f"\n50 sagas drained in one call: {elapsed:.1f} s, {report.tasks} tasks, {report.cycles} cycles")
    assert report.satisfied and not report.pending
    facts = [_facts(protean_celery_app, f"o-{n}") for n in range(50)]
    assert sum(f["order"] == "COMPLETED" for f in facts) == 45
    assert sum(f["order"] == "CANCELLED" for f in facts) == 5


@pytest.mark.integration
def test_parity_with_a_real_worker(protean_celery_app, redis_server, tmp_path):
    run = run_orders(tmp_path, 20, broker=redis_server.url)
    assert run.returncode == 0, run.output
    orders_db = sa.create_engine(f"sqlite:///{tmp_path}/orders.db")
    events_db = sa.create_engine(f"sqlite:///{tmp_path}/orders.db")
    completed = rows(orders_db, """SELECT order_id FROM "order" WHERE status = 'COMPLETED' LIMIT 1""")[0][0]
    cancelled = rows(orders_db, """SELECT order_id FROM "order" WHERE status = 'CANCELLED' LIMIT 1""")[0][0]

    process_and_wait(protean_celery_app, _place("drained-ok"))
    process_and_wait(protean_celery_app, _place("drained-declined", declined=True))

    assert saga_facts(orders_db, events_db, completed) == _facts(protean_celery_app, "drained-ok")
    assert saga_facts(orders_db, events_db, cancelled) == _facts(protean_celery_app, "drained-declined")


def test_a_redelivered_message_is_absorbed_by_the_inbox(protean_celery_app):
    from protean_celery.envelope import encode

    process_and_wait(protean_celery_app, _place("o-twice"))
    with protean_celery_app.domain.domain_context():
        store = protean_celery_app.domain.event_store.store
        created = [m for m in store.read("orders::shipment") if m.metadata.headers.type.endswith("ShipmentCreated.v1")]
        placed = store.read("orders::order:command-o-twice")[0]
    courier = protean_celery_app.tasks["protean.orders.CourierSimulator"]
    orders = protean_celery_app.tasks["protean.orders.commands.Order"]
    assert courier.apply(args=(encode(created[0]),)).get() == "duplicate"
    assert orders.apply(args=(encode(placed),)).get() == "duplicate"
    assert drain(protean_celery_app).satisfied
    assert _facts(protean_celery_app, "o-twice")["courier_calls"] == 1


def test_a_redelivered_event_issues_no_second_command_even_without_its_inbox_marker(protean_celery_app, monkeypatch):
    from protean_celery.envelope import encode
    from protean_celery.inbox import inbox_table

    # As with an event store whose transitions commit apart from the marker (Message DB):
    # only there can a transition exist without its marker.
    monkeypatch.setattr(protean_celery_app.runtime, "transitions", None)
    process_and_wait(protean_celery_app, _place("o-pm"))
    with protean_celery_app.runtime.inbox.engine.begin() as conn:
        conn.execute(inbox_table.delete())  # the crash window: transition appended, marker lost
    with protean_celery_app.domain.domain_context():
        store = protean_celery_app.domain.event_store.store
        confirmed = [m for m in store.read("orders::payment-o-pm") if m.metadata.headers.type.endswith("Confirmed.v1")]
    pm = protean_celery_app.tasks["protean.orders.OrderFulfillment"]
    assert pm.apply(args=(encode(confirmed[0]),)).get() == "duplicate"
    assert drain(protean_celery_app).satisfied
    with protean_celery_app.domain.domain_context():
        shipments = store.read("orders::shipment:command-o-pm")
    assert [m.metadata.headers.type for m in shipments] == ["Orders.CreateShipment.v1", "Orders.DeliverShipment.v1"]


def test_an_event_before_its_saga_started_is_retried_then_dead_lettered(protean_celery_app):
    from protean_celery.envelope import encode
    from protean_celery.tasks.retry import EARLY_RETRIES

    process_and_wait(protean_celery_app, _place("o-early"))
    with protean_celery_app.domain.domain_context():
        store = protean_celery_app.domain.event_store.store
        reserved = [
            m for m in store.read("orders::inventory-o-early") if m.metadata.headers.type.endswith("Reserved.v1")
        ]
    from protean.utils.eventing import MessageEnvelope

    payload = copy.deepcopy(encode(reserved[0]))
    payload["data"]["order_id"] = "o-never-placed"  # an event for a saga that has not started
    payload["metadata"]["headers"]["id"] = "orders::inventory-o-never-placed-0.1"  # a message of its own
    # Signed like any message Protean writes: a genuine event, only early.
    payload["metadata"]["envelope"]["checksum"] = MessageEnvelope.compute_checksum(payload["data"])
    pm = protean_celery_app.tasks["protean.orders.OrderFulfillment"]
    result = pm.apply(args=(payload,))
    assert result.failed()
    [entry] = protean_celery_app.runtime.dead_letters.list(task="protean.orders.OrderFulfillment")
    assert "before instance 'o-never-placed' was started" in entry.error
    assert entry.attempts == EARLY_RETRIES + 1  # the first try and the early-event budget (not the handler's 3)
