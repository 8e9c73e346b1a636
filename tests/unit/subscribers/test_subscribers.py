"""An app's subscribers: their queues, routes and bridge ticks in Celery's config, the listing, replay."""

import pytest
from celery.exceptions import Reject
from protean.core.subscriber import BaseSubscriber

from protean_celery import ProteanCelery
from protean_celery.errors import ConfigurationError, DeadLetterError
from protean_celery.outbox.cursor import MemoryCursorStore
from protean_celery.subscribers.delivery import wrap
from tests.unit.subscribers.conftest import STREAM, feed_domain, queued

TASK = "protean.shop.PartnerFeed"


def test_a_worker_consumes_the_subscriber_queue_and_beat_ticks_its_bridge(feed_app):
    conf = feed_app.conf
    assert TASK in [queue.name for queue in conf.task_queues]
    assert conf.task_routes[TASK] == {"queue": TASK}
    assert conf.task_routes["protean.shop.relay.subscribers"] == {"queue": "protean.shop.relay"}
    assert conf.beat_schedule["protean.shop.relay.subscribers[PartnerFeed]"]["kwargs"] == {"subscriber": "PartnerFeed"}
    assert TASK in feed_app.tasks and "protean.shop.relay.subscribers" in feed_app.tasks


def test_the_listing_names_task_queue_source_and_consumer_group(feed_app):
    [item] = feed_app.subscribers.as_list()
    assert item == {
        "task": TASK, "kind": "subscriber", "subscriber": "tests.unit.subscribers.conftest.PartnerFeed",
        "queue": TASK, "broker": "default", "stream": STREAM,
        "consumer_group": "tests.unit.subscribers.conftest.PartnerFeed", "bridge": "protean.shop.relay.subscribers",
    }
    assert f"reads    broker 'default' stream '{STREAM}'" in feed_app.subscribers.describe()


class Elsewhere(BaseSubscriber):
    def __call__(self, payload: dict) -> None:
        pass


def test_an_app_whose_subscriber_reads_a_broker_without_consumer_groups_does_not_build():
    domain = feed_domain()
    domain.config["brokers"]["pubsub"] = {"provider": "redis_pubsub", "URI": "redis://127.0.0.1:1/0"}
    domain.register(Elsewhere, broker="pubsub", stream="orders")
    domain.init(traverse=False)
    with pytest.raises(ConfigurationError, match="no consumer groups") as info:
        ProteanCelery(domain, config={"broker_url": "memory://"}, cursors=MemoryCursorStore())
    assert "Elsewhere reads broker 'pubsub'" in str(info.value) and "provider 'redis'" in str(info.value)


def test_a_dead_lettered_message_replays_to_the_subscriber_queue_and_leaves_the_dead_letters(feed_app):
    envelope = wrap("default", STREAM, "1-0", [1])
    with pytest.raises(Reject):
        feed_app.tasks[TASK].run(envelope)
    [entry] = feed_app.runtime.dead_letters.list(task=TASK)
    assert feed_app.subscribers.owns(entry.task) and not feed_app.subscribers.owns("protean.shop.Notifier")
    task_id = feed_app.subscribers.replay(feed_app.runtime, entry.id)
    assert queued(feed_app, feed_app.subscribers.routes[0]) == [(task_id, envelope)]
    assert feed_app.runtime.dead_letters.list(task=TASK) == []


def test_replaying_another_task_s_dead_letter_here_is_refused(feed_app):
    entry_id = feed_app.runtime.dead_letters.park("protean.shop.Notifier", {"x": 1}, ValueError("no"))
    with pytest.raises(DeadLetterError, match="not a broker subscriber's message"):
        feed_app.subscribers.replay(feed_app.runtime, entry_id)


def test_the_drain_bridges_the_streams_and_runs_the_subscriber_tasks(sqlite_feed_app):
    from protean_celery.testing.drain import drain
    from tests.support.shop import Order
    from tests.unit.subscribers.conftest import SEEN, publish

    publish(sqlite_feed_app, {"ref": "d1"}, {"ref": "d2"})
    report = drain(sqlite_feed_app)
    assert report.satisfied and report.tasks >= 2
    assert sorted(payload["ref"] for payload, _ in SEEN) == ["d1", "d2"]
    with sqlite_feed_app.domain.domain_context():
        assert sqlite_feed_app.domain.repository_for(Order).get("d2").order_id == "d2"
