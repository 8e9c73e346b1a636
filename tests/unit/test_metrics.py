"""``protean metrics``: samples read from the broker and the state at scrape time (Testbed: SQLite, memory broker)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from protean_celery import metrics
from protean_celery.metrics import collect
from tests.support.shop import PlaceOrder

FULFILMENT = "protean.shop.Fulfilment"


@pytest.fixture
def app(sqlite_app):
    return sqlite_app


def _values(scrape, name):
    return {tuple(sorted(sample.labels.items())): sample.value for sample in scrape.samples if sample.name == name}


def _value(scrape, name, **labels):
    return _values(scrape, name)[tuple(sorted(labels.items()))]


def test_an_idle_app_has_every_gauge_at_zero_and_every_component_up(app):
    scrape = collect(app)
    assert scrape.failures == []
    assert set(_values(scrape, "protean_celery_up").values()) == {1.0}
    depths = _values(scrape, "protean_celery_queue_depth")
    assert len(depths) == len(app.topology.queues) and set(depths.values()) == {0.0}
    assert set(_values(scrape, "protean_celery_dead_letters").values()) == {0.0}
    assert _value(scrape, "protean_celery_dead_letters", task=FULFILMENT) == 0.0  # every task, even without any
    assert _value(scrape, "protean_celery_outbox_pending", provider="default") == 0.0
    assert _value(scrape, "protean_celery_relay_pending") == 0.0
    assert _value(scrape, "protean_celery_sweep_watched") == 0.0


def test_unrelayed_outbox_rows_and_commands_then_the_queues_they_reach(app):
    app.process(PlaceOrder(order_id="o1"), asynchronous=False)  # no nudge: the row and the command wait
    waiting = collect(app)
    assert _value(waiting, "protean_celery_outbox_pending", provider="default") == 1.0
    assert _value(waiting, "protean_celery_outbox_rows", provider="default", status="pending") == 1.0
    assert _value(waiting, "protean_celery_outbox_oldest_pending_age_seconds", provider="default") >= 0.0
    assert _value(waiting, "protean_celery_commands_unrelayed") == 1.0
    assert _value(waiting, "protean_celery_relay_pending") == 2.0
    app.relay()
    relayed = collect(app)
    assert _value(relayed, "protean_celery_outbox_pending", provider="default") == 0.0
    assert _value(relayed, "protean_celery_queue_depth", queue=FULFILMENT, task=FULFILMENT) == 1.0
    assert _value(relayed, "protean_celery_queue_lag_seconds", queue=FULFILMENT, task=FULFILMENT) >= 0.0


def test_queue_lag_is_the_age_of_the_oldest_waiting_message(app):
    queue = app.topology.route(FULFILMENT).queue
    written = datetime.now(UTC) - timedelta(minutes=10)
    payload = {"data": {}, "metadata": {"headers": {"time": written.isoformat()}}}
    with app.connection_for_write() as connection:
        connection.Producer().publish([[payload], {}, {}], exchange=queue.exchange, routing_key=queue.routing_key)
    lag = _value(collect(app), "protean_celery_queue_lag_seconds", queue=queue.name, task=FULFILMENT)
    assert 600 <= lag < 700


def test_dead_letters_per_task_and_inbox_markers_per_handler(app):
    app.runtime.dead_letters.park(FULFILMENT, {"data": {}}, RuntimeError("boom"))
    app.runtime.inbox.mark("m1", "Fulfilment")
    app.runtime.inbox.mark("m2", "Fulfilment")
    scrape = collect(app)
    assert _value(scrape, "protean_celery_dead_letters", task=FULFILMENT) == 1.0
    assert _value(scrape, "protean_celery_inbox_markers", handler="Fulfilment") == 2.0


def test_an_unreachable_broker_is_a_failed_component_and_its_samples_are_left_out(app):
    app.conf.broker_url = "redis://:s3cret@127.0.0.1:1/0"
    scrape = collect(app, timeout=3)
    assert [check.name for check in scrape.failures] == ["broker"]
    assert "127.0.0.1:1" in scrape.failures[0].detail and "s3cret" not in scrape.failures[0].detail
    assert _value(scrape, "protean_celery_up", component="broker") == 0.0
    assert _values(scrape, "protean_celery_queue_depth") == {}
    assert _value(scrape, "protean_celery_up", component="state") == 1.0  # the rest still answers


def test_a_source_that_never_answers_fails_at_the_timeout(app, monkeypatch):
    released = threading.Event()
    monkeypatch.setattr(metrics, "outbox_samples", lambda app: released.wait(30))
    try:
        scrape = collect(app, timeout=0.5)
    finally:
        released.set()
    assert [(check.name, check.detail) for check in scrape.failures] == [("outbox", "no answer within 0.5 s")]
    assert _values(scrape, "protean_celery_outbox_pending") == {}
