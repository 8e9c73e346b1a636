"""``deadlines.schedule`` / ``cancel``: a row in the caller's Unit of Work, or a transaction of its own."""

from datetime import UTC, datetime, timedelta

import pytest
from protean.core.unit_of_work import UnitOfWork

from protean_celery import deadlines
from protean_celery.deadlines import DeadlineStore, fire_due
from protean_celery.errors import DeadlineError
from tests.support.shop import OrderShipped, PlaceOrder


def test_a_deadline_after_a_delay_is_due_that_long_after_the_domain_clock(shop):
    now = shop.domain.clock.now()
    key = deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=15), key="k1")
    [deadline] = DeadlineStore(shop.domain).list()
    assert key == "k1"
    assert (deadline.key, deadline.kind, deadline.message_type) == ("k1", "COMMAND", "Shop.PlaceOrder.v1")
    assert deadline.due_at == now + timedelta(minutes=15)
    assert deadline.data == {"order_id": "o1"}


def test_a_deadline_without_a_key_gets_a_unique_one(shop):
    first = deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=1))
    second = deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=1))
    assert first != second
    assert {d.key for d in DeadlineStore(shop.domain).list()} == {first, second}


def test_scheduling_a_pending_key_again_replaces_it(shop):
    deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=1), key="k")
    deadlines.schedule(PlaceOrder(order_id="o2"), after=timedelta(minutes=2), key="k")
    [deadline] = DeadlineStore(shop.domain).list()
    assert deadline.data == {"order_id": "o2"}


def test_a_deadline_scheduled_in_a_unit_of_work_that_rolls_back_does_not_exist(shop):
    with pytest.raises(RuntimeError), UnitOfWork():
        deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=1), key="k")
        raise RuntimeError("the transition failed")
    assert DeadlineStore(shop.domain).list() == []


def test_a_cancel_commits_with_its_unit_of_work(shop):
    deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=1), key="k")
    with pytest.raises(RuntimeError), UnitOfWork():
        assert deadlines.cancel("k")
        raise RuntimeError("the transition failed")
    assert [d.key for d in DeadlineStore(shop.domain).list()] == ["k"]
    with UnitOfWork():
        assert deadlines.cancel("k")
    assert DeadlineStore(shop.domain).list() == []
    assert not deadlines.cancel("k")  # already gone: the caller is told


def test_an_event_deadline_records_the_aggregate_it_is_raised_on(shop):
    deadlines.schedule(OrderShipped(order_id="o1"), at=datetime(2030, 1, 1, tzinfo=UTC), key="e")
    [deadline] = DeadlineStore(shop.domain).list()
    assert (deadline.kind, deadline.aggregate_id) == ("EVENT", "o1")
    assert deadline.due_at == datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "kwargs, fix",
    [
        ({}, "exactly one of at="),
        ({"after": timedelta(1), "at": datetime.now(UTC)}, "exactly one of at="),
        ({"at": datetime(2030, 1, 1)}, "timezone-aware"),
        ({"after": 5}, "timedelta"),
        ({"after": timedelta(1), "key": ""}, "non-empty string"),
    ],
)
def test_bad_times_and_keys_are_refused_with_the_fix(shop, kwargs, fix):
    with pytest.raises(DeadlineError, match=fix):
        deadlines.schedule(PlaceOrder(order_id="o1"), **kwargs)
    assert DeadlineStore(shop.domain).list() == []


def test_only_a_registered_command_or_event_can_be_scheduled(shop):
    with pytest.raises(DeadlineError, match="register it with @domain.command"):
        deadlines.schedule(object(), after=timedelta(1))


def test_outside_a_domain_context_the_error_says_where_to_call_it():
    with pytest.raises(DeadlineError, match="domain context"):
        deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(1))


def test_on_the_memory_provider_deadlines_live_in_this_process_and_fire(shop_app):
    with shop_app.domain.domain_context():
        deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(0), key="k")
        assert [d.key for d in DeadlineStore(shop_app.domain).list()] == ["k"]
        assert fire_due(shop_app.runtime).fired == 1
        assert [m.metadata.headers.type for m in shop_app.domain.event_store.store.read("shop::order:command-o1")] \
            == ["Shop.PlaceOrder.v1"]
    assert DeadlineStore(shop_app.domain).list() == []
