"""The AMQP adapter: depths by passive declare; a queue with ready messages is unsure; workers are asked.

Kombu's memory transport answers passive declares as RabbitMQ does, so these run without a server.
"""

from unittest import mock

from protean_celery.broker import AmqpBroker, broker_for, workers


def test_depths_come_from_passive_declares_and_a_missing_queue_holds_nothing(shop_app):
    queue = shop_app.topology.queues[0]
    with shop_app.connection_for_write() as connection:
        connection.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key)
    assert AmqpBroker(shop_app).depths([queue.name, "never-declared"]) == {queue.name: 1, "never-declared": 0}
    assert AmqpBroker(shop_app).depths([queue.name]) == broker_for(shop_app).depths([queue.name])


def test_a_task_a_worker_holds_is_found_and_a_queue_with_ready_messages_is_unsure(shop_app):
    busy, idle = shop_app.topology.queues[:2]
    with shop_app.connection_for_write() as connection:
        connection.Producer().publish({"n": 1}, exchange=busy.exchange, routing_key=busy.routing_key)
    with mock.patch.object(workers, "held_by_workers", return_value=({"t2"}, 1)):
        sighting = AmqpBroker(shop_app).locate({busy.name: {"t1"}, idle.name: {"t2", "t3"}})
    assert sighting.found == {"t2"} and sighting.unsure == {busy.name} and sighting.workers == 1
    assert sighting.present(busy.name, "t1") and sighting.present(idle.name, "t2")
    assert not sighting.present(idle.name, "t3")


def test_in_flight_counts_what_workers_run_or_reserve_but_ignored_tasks(shop_app):
    inspect = mock.Mock()
    inspect.active.return_value = {"w1": [{"name": "relay"}, {"name": "handler"}]}
    inspect.reserved.return_value = {"w1": [{"name": "handler"}]}
    with mock.patch.object(shop_app.control, "inspect", return_value=inspect):
        assert AmqpBroker(shop_app).in_flight(ignore={"relay"}) == 2


def test_nothing_is_reclaimed_rabbitmq_requeues_by_itself(shop_app):
    assert AmqpBroker(shop_app).reclaim(older_than=0) == []


def test_the_age_of_a_waiting_message_is_unknown_on_amqp(shop_app):
    queue = shop_app.topology.queues[0]
    with shop_app.connection_for_write() as connection:
        connection.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key)
    assert AmqpBroker(shop_app).oldest_age(queue.name) is None  # it cannot be read without taking it
    assert AmqpBroker(shop_app).depths([queue.name]) == {queue.name: 1}
