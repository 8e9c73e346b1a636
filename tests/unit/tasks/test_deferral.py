"""Deferral: a message before its turn goes back with a short countdown, and is dead-lettered once it waited enough."""

from types import SimpleNamespace

import pytest
from celery.exceptions import Reject

from protean_celery.errors import OrderingGap, OutOfTurn
from protean_celery.tasks.deferral import DEFERRED, WAITS_HEADER, defer, waits


class _Task:
    name = "protean.shop.Fulfilment"

    def __init__(self, **request):
        self.request = SimpleNamespace(headers=None, **request)
        self.sent: list[dict] = []

    def signature_from_request(self, request, **options):
        return SimpleNamespace(apply_async=lambda: self.sent.append(options))


def _gap():
    return OutOfTurn("OrderShipped x is at position 1 of shop::order-o1, but Fulfilment has not handled position 0 "
                     "yet", lane="p|shop::order-o1", position=1, missing=0)


def test_a_deferred_message_comes_back_soon_counting_its_waits_not_its_retries():
    task, parked = _Task(), []
    assert defer(task, _gap(), 60, lambda error, attempts: parked.append(error)) == DEFERRED
    [sent] = task.sent
    assert sent["headers"][WAITS_HEADER] == 1 and 0 < sent["countdown"] < 0.1 and "retries" not in sent
    assert parked == []


def test_waits_are_read_from_the_request_or_its_headers():
    assert waits(SimpleNamespace(**{WAITS_HEADER: 3})) == 3
    assert waits(SimpleNamespace(headers={WAITS_HEADER: "4"})) == 4
    assert waits(SimpleNamespace(headers=None)) == 0


def test_once_the_budget_is_spent_it_is_dead_lettered_naming_the_missing_position():
    task, parked = _Task(**{WAITS_HEADER: 60}), []
    with pytest.raises(Reject):
        defer(task, _gap(), 60, lambda error, attempts: parked.append((error, attempts)))
    [(error, attempts)] = parked
    assert isinstance(error, OrderingGap) and attempts == 61 and task.sent == []
    assert "has not handled position 0" in str(error) and "waited 60 times" in str(error)
    assert error.fields["missing"] == 0


def test_a_gap_that_never_fills_is_dead_lettered_and_handled_once_replayed_after_its_predecessor(sqlite_shop):
    from protean_celery.envelope import encode
    from protean_celery.tasks import execute
    from protean_celery.turns import Turns
    from tests.support.shop import PlaceOrder, ShipOrder

    app = sqlite_shop(handlers={"Fulfilment": {"ordered": True}}, ordering_retries=2, nudge=False)  # queues empty
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
        app.domain.process(ShipOrder(order_id="o1"), asynchronous=False)
        placed, shipped = app.domain.event_store.store.read("shop::order-o1")
    route = app.topology.route("protean.shop.Fulfilment")
    task = _Task(id="t1", retries=0, **{WAITS_HEADER: 2})  # its predecessor never came: deferred twice already
    with pytest.raises(Reject):
        execute(task, app.runtime, route, encode(shipped))
    [entry] = app.runtime.dead_letters.list(task=route.task_name)
    assert entry.error.startswith("OrderingGap") and "has not handled position 0" in entry.error
    execute(_Task(id="t0", retries=0), app.runtime, route, encode(placed))  # the predecessor, at last
    app.runtime.replay(entry.id, app)
    with app.connection_for_read() as connection:
        replayed = route.queue.bind(connection.default_channel).get(no_ack=True, accept=["json"])
    assert execute(_Task(id="t2", retries=0), app.runtime, route, replayed.payload[0][0]) == "handled"
    assert Turns(app.domain).position(f"{route.spec.path}|shop::order-o1") == 1
    assert app.runtime.dead_letters.list(task=route.task_name) == []
