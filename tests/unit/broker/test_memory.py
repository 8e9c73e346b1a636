"""Kombu's memory transport: queue depths; nothing held, nothing to reclaim."""

from protean_celery.broker import MemoryBroker


def _publish(app, queue, task_id):
    with app.connection_for_write() as connection:
        connection.Producer().publish(
            {"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key, headers={"id": task_id, "task": "t"}
        )


def test_depths_count_the_messages_waiting_in_each_queue(shop_app):
    first, second = shop_app.topology.queues[:2]
    _publish(shop_app, first, "t1")
    _publish(shop_app, first, "t2")
    assert MemoryBroker(shop_app).depths([first.name, second.name, "never-declared"]) == {
        first.name: 2, second.name: 0, "never-declared": 0,
    }


def test_nothing_is_in_flight_or_reclaimed(shop_app):
    broker = MemoryBroker(shop_app)
    _publish(shop_app, shop_app.topology.queues[0], "t1")
    assert broker.in_flight() == 0
    assert broker.reclaim(older_than=0) == []


def test_with_no_worker_to_ask_every_searched_queue_is_unsure(shop_app):
    first, second = shop_app.topology.queues[:2]
    sighting = MemoryBroker(shop_app).locate({first.name: {"t1"}, second.name: {"t2"}}, timeout=0.1)
    assert sighting.unsure == {first.name, second.name} and sighting.workers == 0
    assert MemoryBroker(shop_app).locate({first.name: set()}).unsure == set()  # nothing wanted: no search


def test_oldest_age_is_the_age_of_the_protean_message_at_the_head_of_the_queue(shop_app):
    from datetime import UTC, datetime, timedelta

    queue = shop_app.topology.queues[0]
    broker = MemoryBroker(shop_app)
    assert broker.oldest_age(queue.name) == 0.0
    for written in (datetime.now(UTC) - timedelta(hours=2), datetime.now(UTC)):
        payload = {"data": {}, "metadata": {"headers": {"time": written.isoformat()}}}
        with shop_app.connection_for_write() as connection:
            connection.Producer().publish([[payload], {}, {}], exchange=queue.exchange, routing_key=queue.routing_key)
    assert 7200 <= broker.oldest_age(queue.name) < 7300
    assert broker.depths([queue.name]) == {queue.name: 2}


def test_oldest_age_of_a_foreign_message_is_unknown(shop_app):
    queue = shop_app.topology.queues[0]
    _publish(shop_app, queue, "t1")
    assert MemoryBroker(shop_app).oldest_age(queue.name) is None
