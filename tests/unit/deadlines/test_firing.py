"""Firing due deadlines: once, in batches, atomically with the append; failures kept with their error."""

from datetime import timedelta

import sqlalchemy as sa

from protean_celery import deadlines
from protean_celery.deadlines import DeadlineStore, deadlines_table, fire_due, firing
from protean_celery.testing import drain
from tests.support.shop import SENT, OrderShipped, PlaceOrder


def _commands(app, order_id):
    return [m.metadata.headers.type for m in app.domain.event_store.store.read(f"shop::order:command-{order_id}")]


def test_a_due_command_is_processed_once_and_its_row_removed(shop):
    deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(seconds=-60), key="late")  # in the past
    report = fire_due(shop.runtime)
    assert (report.fired, report.failed) == (1, 0)
    assert _commands(shop, "o1") == ["Shop.PlaceOrder.v1"]
    assert DeadlineStore(shop.domain).list() == []
    assert fire_due(shop.runtime).fired == 0
    assert _commands(shop, "o1") == ["Shop.PlaceOrder.v1"]


def test_a_deadline_waits_for_its_time_on_the_domain_clock(shop):
    deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=15))
    shop.domain.clock.advance(timedelta(minutes=14))
    assert fire_due(shop.runtime).fired == 0
    shop.domain.clock.advance(timedelta(minutes=1))
    assert fire_due(shop.runtime).fired == 1


def test_one_tick_fires_every_due_deadline_in_batches(sqlite_shop):
    from protean_celery.testing import FakeClock

    app = sqlite_shop(deadline_batch_size=3)
    FakeClock.install(app.domain)
    with app.domain.domain_context():
        for number in range(7):
            deadlines.schedule(PlaceOrder(order_id=f"o{number}"), after=timedelta(0))
        deadlines.schedule(PlaceOrder(order_id="later"), after=timedelta(hours=1))
        report = fire_due(app.runtime)
        assert (report.fired, report.batches) == (7, 3)
        assert [d.data["order_id"] for d in DeadlineStore(app.domain).list()] == ["later"]


def test_an_event_deadline_is_raised_on_its_aggregate_and_reaches_its_handlers(shop):
    shop.process(PlaceOrder(order_id="o1"))
    drain(shop)
    SENT.clear()
    deadlines.schedule(OrderShipped(order_id="o1"), after=timedelta(0))
    assert fire_due(shop.runtime).fired == 1
    drain(shop)
    assert SENT == ["o1"]


def test_a_failing_deadline_rolls_back_its_batch_then_the_others_fire_once(shop, monkeypatch):
    for order_id in ("o1", "bad", "o3"):
        deadlines.schedule(PlaceOrder(order_id=order_id), after=timedelta(0), key=order_id)
    fire = firing._fire

    def failing(domain, row):
        if row["key"] == "bad":
            raise RuntimeError("cannot build it")
        fire(domain, row)

    monkeypatch.setattr(firing, "_fire", failing)
    report = fire_due(shop.runtime)
    assert (report.fired, report.failed) == (2, 1)
    # The batch appended o1's command before "bad" failed: rolled back with it, so o1 fired once.
    assert _commands(shop, "o1") == _commands(shop, "o3") == ["Shop.PlaceOrder.v1"]
    assert _commands(shop, "bad") == []
    [kept] = DeadlineStore(shop.domain).list()
    assert (kept.key, kept.status, kept.attempts) == ("bad", "pending", 1)
    assert "cannot build it" in kept.last_error
    assert kept.due_at > shop.domain.clock.now()  # retried after a backoff


def test_a_deadline_that_keeps_failing_is_kept_as_failed_and_never_fired_again(sqlite_shop):
    from protean_celery.testing import FakeClock

    app = sqlite_shop(deadline_attempts=2)
    clock = FakeClock.install(app.domain)
    with app.domain.domain_context():
        deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(0), key="gone")
        with DeadlineStore(app.domain).engine.begin() as conn:  # its type was removed from the domain since
            conn.execute(sa.update(deadlines_table).values(message_type="Shop.Removed.v1"))
        assert fire_due(app.runtime).failed == 1
        clock.advance(timedelta(minutes=10))
        assert fire_due(app.runtime).failed == 1
        clock.advance(timedelta(days=1))
        assert fire_due(app.runtime).failed == 0
        [kept] = DeadlineStore(app.domain).list()
        assert (kept.status, kept.attempts) == ("failed", 2)
        assert "no longer registers" in kept.last_error


def test_beat_runs_the_deadline_tick_every_deadline_interval(sqlite_shop):
    app = sqlite_shop(deadline_interval=0.5)
    name = app.topology.relay_tasks["deadlines"]
    entry = app.conf.beat_schedule[name]
    assert (entry["task"], entry["schedule"], entry["options"]["expires"]) == (name, 0.5, 0.5)
    assert name in app.tasks
