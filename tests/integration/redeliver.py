"""Place one order, wait for its saga, then deliver its ShipmentCreated event to the
courier handler five more times at once, and its InventoryReserved event to the
process manager five more times at once (as redeliveries would). Prints the courier
call count, the payment requests and the saga's transitions before and after. Run as
a script with CELERY_BROKER_URL and PROTEAN_CELERY_STATE set."""

import time

from protean_celery import storage
from protean_celery.backlog import backlog
from protean_celery.envelope import encode
from workers.orders.app import app
from workers.orders.domain import CourierCall, Order, PlaceOrder

domain = app.domain


def wait(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(str(backlog(app)))


def order_done():
    with domain.domain_context():
        found = domain.repository_for(Order)._dao.query.filter(order_id="dup", status="COMPLETED").all()
        return found.total == 1 and backlog(app).quiescent


storage.setup(domain, app.runtime.state)
with domain.domain_context():
    app.process(PlaceOrder(order_id="dup", customer="c", amount=1.0, sku="s", quantity=1, declined=False))
wait(order_done)
with domain.domain_context():
    created = [m for m in domain.event_store.store.read("orders::shipment")
               if m.metadata.headers.type.endswith("ShipmentCreated.v1")][0]
    reserved = [m for m in domain.event_store.store.read("orders::inventory")
                if m.metadata.headers.type.endswith("InventoryReserved.v1") and m.data["order_id"] == "dup"][0]


def saga_counts():
    with domain.domain_context():
        store = domain.event_store.store
        payments = [m for m in store.read("orders::payment:command") if m.data.get("order_id") == "dup"]
        transitions = store.read("orders::order_fulfillment-dup")
        return len(payments), len(transitions)


before = saga_counts()
route = app.topology.route("protean.orders.CourierSimulator")
saga = app.topology.route("protean.orders.OrderFulfillment")
for copy in range(5):
    app.send_task(route.task_name, args=(encode(created),), task_id=f"redelivery-{copy}",
                  exchange=route.exchange, routing_key="orders::shipment", declare=[route.queue])
    app.send_task(saga.task_name, args=(encode(reserved),), task_id=f"saga-redelivery-{copy}",
                  exchange=saga.exchange, routing_key="orders::inventory", declare=[saga.queue])
wait(lambda: backlog(app).quiescent)  # every copy handled and acknowledged
with domain.domain_context():
    print("courier attempts", domain.repository_for(CourierCall).get("dup").attempts)
print("saga before", before, "after", saga_counts())
