"""The Redis adapter on a real redis-server: lists per priority, the unacked hash, reclaiming by tag.

The first test is the canary for a Kombu upgrade: it names every Kombu internal the adapter reads.
"""

import time

import pytest
import redis
from celery import Celery
from kombu import Exchange, Queue
from kombu.transport import redis as kombu_redis

from protean_celery.broker import RedisBroker
from protean_celery.broker import redis as adapter
from protean_celery.broker.nodes import NODE_GRACE, ROLL_KEY
from protean_celery.broker.redis import RECLAIM_LOCK

QUEUE = Queue("adapter-q", Exchange("adapter-q"), "adapter-q")


@pytest.fixture
def app(redis_server):
    url = redis_server.url.rsplit("/", 1)[0] + "/9"
    redis.Redis.from_url(url).flushdb()
    return Celery(broker=url)


def _publish(app, task_id, priority=None):
    with app.connection_for_write() as connection:
        connection.Producer().publish({"n": 1}, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key,
                                      declare=[QUEUE], headers={"id": task_id, "task": "t"}, priority=priority)


def _take(app):
    """A consumer takes one message and holds it unacknowledged (as a late-acking worker does)."""
    connection = app.connection_for_read()
    taken = []
    connection.Consumer([QUEUE], callbacks=[lambda body, message: taken.append(message)]).consume()
    connection.drain_events(timeout=5)
    assert len(taken) == 1
    return connection


def test_the_kombu_internals_the_adapter_reads_are_still_there():
    for name in ("_size", "_q_for_pri", "priority_steps", "unacked_key", "unacked_index_key", "client", "qos"):
        assert hasattr(kombu_redis.Channel, name), f"Kombu's Redis Channel has no {name} any more"
    assert hasattr(kombu_redis.QoS, "restore_by_tag")


def test_depths_count_every_priority_level(app):
    _publish(app, "t1")
    _publish(app, "t2", priority=9)
    assert RedisBroker(app).depths([QUEUE.name, "never-declared"]) == {QUEUE.name: 2, "never-declared": 0}


def test_a_message_is_found_queued_then_held_and_an_absent_one_is_not(app):
    broker = RedisBroker(app)
    _publish(app, "t1")
    assert broker.locate({QUEUE.name: {"t1", "gone"}}).found == {"t1"}
    held = _take(app)
    try:
        assert broker.depths([QUEUE.name]) == {QUEUE.name: 0}
        assert broker.in_flight() == 1
        sighting = broker.locate({QUEUE.name: {"t1", "gone"}})
        assert sighting.found == {"t1"} and not sighting.present(QUEUE.name, "gone")
    finally:
        held.release()


def test_a_queue_longer_than_the_scan_limit_is_unsure(app):
    _publish(app, "t1")
    _publish(app, "t2")
    sighting = RedisBroker(app).locate({QUEUE.name: {"t3"}}, scan_limit=1)
    assert sighting.unsure == {QUEUE.name} and sighting.present(QUEUE.name, "t3")


def test_a_held_message_is_reclaimed_only_when_workers_answer_and_none_holds_it(app, monkeypatch):
    broker = RedisBroker(app)
    _publish(app, "t1")
    held = _take(app)
    try:
        assert broker.reclaim(older_than=0, timeout=0.2) == []  # no worker answers: left alone
        monkeypatch.setattr(adapter, "held_by_nodes", lambda celery, ids, timeout: ({"t1"}, {"a@h"}))
        assert broker.reclaim(older_than=0) == []  # a worker holds it
        monkeypatch.setattr(adapter, "held_by_nodes", lambda celery, ids, timeout: (set(), {"a@h"}))
        assert broker.reclaim(older_than=3600) == []  # taken just now
        [back] = broker.reclaim(older_than=0)
        assert (back.task, back.task_id, back.routing_key) == ("t", "t1", QUEUE.routing_key)
        assert broker.depths([QUEUE.name]) == {QUEUE.name: 1} and broker.in_flight() == 0
    finally:
        held.release()


def test_nothing_is_reclaimed_while_a_node_that_answered_recently_is_silent(app, monkeypatch):
    broker = RedisBroker(app)
    _publish(app, "t1")
    held = _take(app)
    client = redis.Redis.from_url(app.conf.broker_url)
    try:
        client.hset(ROLL_KEY, "b@h", time.time() - 5)  # b answered 5 s ago: alive, and may hold t1
        monkeypatch.setattr(adapter, "held_by_nodes", lambda celery, ids, timeout: (set(), {"a@h"}))
        assert broker.reclaim(older_than=0) == []
        assert broker.in_flight() == 1
        client.hset(ROLL_KEY, "b@h", time.time() - NODE_GRACE - 1)  # silent longer than the grace: dead
        [back] = broker.reclaim(older_than=0)
        assert back.task_id == "t1" and broker.depths([QUEUE.name]) == {QUEUE.name: 1}
    finally:
        held.release()


def test_one_sweep_reclaims_at_a_time_and_only_the_delivery_it_judged(app, monkeypatch):
    broker = RedisBroker(app)
    _publish(app, "t1")
    held = _take(app)
    client = redis.Redis.from_url(app.conf.broker_url)
    monkeypatch.setattr(adapter, "held_by_nodes", lambda celery, ids, timeout: (set(), {"a@h"}))
    try:
        client.set(RECLAIM_LOCK, "another sweep")
        assert broker.reclaim(older_than=0) == []  # another sweep is reclaiming
        client.delete(RECLAIM_LOCK)
        [tag] = client.zrange("unacked_index", 0, -1)

        def taken_again(celery, ids, timeout):  # put back and taken by a live worker meanwhile
            client.zadd("unacked_index", {tag: time.time() + 1})
            return set(), {"a@h"}

        monkeypatch.setattr(adapter, "held_by_nodes", taken_again)
        assert broker.reclaim(older_than=0) == []
        assert broker.in_flight() == 1 and client.get(RECLAIM_LOCK) is None
    finally:
        held.release()


def _publish_written(app, written, priority=None):
    payload = {"data": {}, "metadata": {"headers": {"time": written.isoformat()}}}
    with app.connection_for_write() as connection:
        connection.Producer().publish([[payload], {}, {}], exchange=QUEUE.exchange, routing_key=QUEUE.routing_key,
                                      declare=[QUEUE], priority=priority)


def test_oldest_age_reads_the_oldest_waiting_message_of_every_priority_level_without_taking_it(app):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    assert RedisBroker(app).oldest_age(QUEUE.name) == 0.0
    _publish_written(app, now - timedelta(minutes=5))
    _publish_written(app, now - timedelta(hours=1), priority=9)  # a newer message in another priority list
    _publish_written(app, now)
    age = RedisBroker(app).oldest_age(QUEUE.name)
    assert 3600 <= age < 3700
    assert RedisBroker(app).depths([QUEUE.name]) == {QUEUE.name: 3}  # read, not taken


def test_oldest_age_of_a_message_that_is_not_a_protean_message_is_unknown(app):
    _publish(app, "t1")
    assert RedisBroker(app).oldest_age(QUEUE.name) is None
