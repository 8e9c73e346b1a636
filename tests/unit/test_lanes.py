"""Protean's priority lanes: a backfill queue per handler, chosen by the relay from the message's priority."""

from types import SimpleNamespace
from unittest.mock import patch

import pytest
from protean.utils.processing import Priority, processing_priority

from protean_celery import lanes
from protean_celery.errors import ConfigurationError
from protean_celery.lanes import Lanes, clamp, read_lanes
from protean_celery.registry import read_handlers
from protean_celery.testing.drain import queue_depths
from protean_celery.topology import build_topology
from tests.support.shop import PlaceOrder, build_domain


def _lanes(**table):
    return read_lanes({"server": {"priority_lanes": {"enabled": True, **table}}})


def test_lanes_are_off_unless_enabled():
    assert read_lanes({}) is None
    assert read_lanes({"server": {"priority_lanes": {"enabled": False, "threshold": 10}}}) is None
    assert _lanes() == Lanes(threshold=0, suffix="backfill")


def test_below_the_threshold_is_backfill_as_in_protean():
    lanes = _lanes(threshold=0)
    assert lanes.backfill(Priority.LOW) and lanes.backfill(Priority.BULK)
    assert not lanes.backfill(Priority.NORMAL) and not lanes.backfill(None) and not lanes.backfill(Priority.CRITICAL)
    assert _lanes(threshold=60).backfill(Priority.HIGH)


@pytest.mark.parametrize(("table", "named"), [
    ({"threshold": 500}, "threshold = 500"),
    ({"threshold": "low"}, "threshold = 'low'"),
    ({"backfill_suffix": "back.fill"}, "backfill_suffix = 'back.fill'"),
])
def test_bad_lane_settings_are_refused_naming_the_key(table, named):
    with pytest.raises(ConfigurationError, match=f"priority_lanes\\] {named}"):
        _lanes(**table)


def test_a_priority_outside_proteans_range_is_clamped_with_a_warning():
    with patch.object(lanes.logger, "warning") as warned:
        assert clamp(-1000) == -100 and clamp(250) == 100
        assert warned.call_count == 2
        assert clamp(-50) == -50 and clamp(None) == 0
        assert warned.call_count == 2


def test_each_handler_gets_a_backfill_queue_bound_the_same_way():
    domain = build_domain()
    domain.init(traverse=False)
    topology = build_topology("shop", read_handlers(domain), lanes=_lanes(backfill_suffix="bulk"))
    for route in topology.routes:
        assert route.backfill_queue.name == route.backfill_exchange.name == f"{route.task_name}.bulk"
        assert [b.routing_key for b in route.backfill_queue.bindings] == [b.routing_key for b in route.queue.bindings]
        assert route.lane(True) == (route.backfill_exchange, route.backfill_queue)
        assert route.lane(False) == (route.exchange, route.queue)
    assert {q.name for q in topology.queues} >= {"protean.shop.Fulfilment", "protean.shop.Fulfilment.bulk"}
    assert topology.queue_tasks()["protean.shop.Fulfilment.bulk"] == "protean.shop.Fulfilment"
    assert "backfill protean.shop.Fulfilment.bulk" in topology.describe()


@pytest.fixture
def lanes_app(memory_shop):
    return memory_shop(server={"default_subscription_type": "stream", "priority_lanes": {"enabled": True}})


def test_the_relay_sends_low_priority_events_to_the_backfill_lane(lanes_app):
    with lanes_app.domain.domain_context():
        lanes_app.domain.process(PlaceOrder(order_id="now"), asynchronous=False)
        with processing_priority(Priority.BULK):
            lanes_app.domain.process(PlaceOrder(order_id="bulk"), asynchronous=False)
    lanes_app.relay()
    depths = queue_depths(lanes_app)
    assert depths["protean.shop.Fulfilment.backfill"] == 1  # the OrderPlaced raised under BULK
    assert depths["protean.shop.Fulfilment"] == 1  # the NORMAL one


def test_the_left_out_warning_names_each_queue_and_how_to_consume_it():
    text = lanes.left_out_warning(["protean.shop.Fulfilment.backfill", "protean.shop.Notifier.backfill"], "x")
    assert "protean.shop.Fulfilment.backfill,protean.shop.Notifier.backfill are not consumed by x" in text
    assert "-Q protean.shop.Fulfilment.backfill,protean.shop.Notifier.backfill" in text


def test_a_worker_whose_q_leaves_out_a_backfill_queue_warns_at_startup(lanes_app, caplog):
    from celery import signals

    consumed = {q.name for q in lanes_app.topology.queues} - {"protean.shop.Notifier.backfill"}
    lanes_app.amqp.queues.select(consumed)  # as `celery worker -Q …` does before celeryd_after_setup
    with caplog.at_level("WARNING", logger="protean_celery.lifecycle"):
        signals.celeryd_after_setup.send(sender="worker@test", instance=SimpleNamespace(app=lanes_app),
                                         conf=lanes_app.conf)
    warned = [r.getMessage() for r in caplog.records if "not consumed" in r.getMessage()]
    assert len(warned) == 1 and "protean.shop.Notifier.backfill are not consumed by this worker's -Q" in warned[0]

    caplog.clear()
    lanes_app.amqp.queues.select(consumed | {"protean.shop.Notifier.backfill"})
    signals.celeryd_after_setup.send(sender="worker@test", instance=SimpleNamespace(app=lanes_app),
                                     conf=lanes_app.conf)
    assert not [r for r in caplog.records if "not consumed" in r.getMessage()]
