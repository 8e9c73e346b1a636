"""Process managers: each event makes its transition once; an event before its instance started waits, then parks."""

import pytest
from celery.exceptions import Retry
from protean.utils.eventing import Message

from protean_celery.envelope import encode
from protean_celery.tasks import execute
from protean_celery.tasks.process_manager import EarlyEventError
from protean_celery.tasks.retry import EARLY_RETRIES, Failure, RetryPolicy, classify
from protean_celery.testing.drain import drain
from tests.support.shop import SENT, Order, PlaceOrder, ShipOrder
from tests.support.tasks import FakeTask

FULFILMENT = "protean.shop.Fulfilment"


def _command(app, order_id="o1"):
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id=order_id))


def test_a_process_manager_version_conflict_is_retried_with_fresh_state(shop_app, monkeypatch):
    from protean.exceptions import ExpectedVersionError

    from tests.support.shop import Fulfilment

    store = shop_app.domain.event_store.store
    category = str(Fulfilment.meta_.stream_category)
    original = store._write
    conflicts = []

    def competing_writer(stream_name, *args, **kwargs):
        # Another worker moved this saga on first (once): Protean itself would not retry.
        if stream_name.startswith(f"{category}-") and not conflicts:
            conflicts.append(stream_name)
            raise ExpectedVersionError(f"Wrong expected version: -1 (Stream: {stream_name}, Stream Version: 0)")
        return original(stream_name, *args, **kwargs)

    monkeypatch.setattr(store, "_write", competing_writer)
    _command(shop_app, "o1")
    assert drain(shop_app).satisfied
    assert conflicts == [f"{category}-o1"]
    with shop_app.domain.domain_context():
        transitions = [m.data["handler_name"] for m in store.read(f"{category}-o1")]
    assert transitions == ["placed", "shipped"]  # each event made its transition once
    assert SENT == ["o1"]


def test_events_after_a_saga_completed_make_no_transition(shop_app):
    from tests.support.shop import Fulfilment

    _command(shop_app, "o1")
    assert drain(shop_app).satisfied
    with shop_app.domain.domain_context():
        shop_app.domain.process(ShipOrder(order_id="o1"))  # a second, genuinely new OrderShipped
    assert drain(shop_app).satisfied
    category = str(Fulfilment.meta_.stream_category)
    with shop_app.domain.domain_context():
        transitions = [m.data["handler_name"] for m in shop_app.domain.event_store.store.read(f"{category}-o1")]
    assert transitions == ["placed", "shipped"]
    assert SENT == ["o1", "o1"]  # the event handler did get the new event


def _early_event(app, order_id="o9", ships=1):
    """An OrderShipped (the ``ships``-th one raised) for an order whose Fulfilment never started."""
    with app.domain.domain_context():
        order = Order(order_id=order_id)
        for _ in range(ships):
            order.ship()
        return encode(Message.from_domain_object(order._events[-1]))


def test_an_event_before_its_instance_started_is_retried_then_dead_lettered(shop_app):
    route = shop_app.topology.route(FULFILMENT)
    task = FakeTask(retries=0)
    with pytest.raises(Retry) as retry:
        execute(task, shop_app.runtime, route, _early_event(shop_app))
    assert isinstance(retry.value.exc, EarlyEventError) and retry.value.exc.correlation == "o9"
    _countdown, budget = task.retried_with
    assert budget == EARLY_RETRIES  # its own budget, not the handler's 3: it outlasts a killed worker's redelivery
    with pytest.raises(EarlyEventError, match="before instance 'o9' was started"):
        execute(FakeTask(retries=budget), shop_app.runtime, route, _early_event(shop_app))
    [entry] = shop_app.runtime.dead_letters.list(task=FULFILMENT)
    assert entry.error.startswith("EarlyEventError") and entry.message_id == "shop::order-o9-0.1"


def test_an_event_for_an_instance_that_started_is_not_early(shop_app):
    _command(shop_app, "o9")
    assert drain(shop_app).satisfied
    route = shop_app.topology.route(FULFILMENT)
    assert execute(FakeTask(retries=0), shop_app.runtime, route, _early_event(shop_app, ships=2)) == "handled"
    assert shop_app.runtime.dead_letters.list() == []


def test_early_events_wait_about_seven_minutes_in_all_for_their_start_event():
    policy = RetryPolicy(max_retries=3, retry_delay_seconds=1.0, version_retries=5, transient_retries=10)
    early = EarlyEventError("early", correlation="o9")
    assert classify(early) is Failure.EARLY
    waits = [policy.delay(Failure.EARLY, retries, rand=lambda: 0.5) for retries in range(policy.budget(Failure.EARLY))]
    assert waits[:3] == [1.0, 2.0, 4.0] and max(waits) == 60.0
    assert 300 + 60 < sum(waits) < 600  # beyond redeliver_after and a sweep interval, under ten minutes
