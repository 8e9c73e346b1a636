"""``broker_for`` picks one adapter per transport from the app's broker URL, without connecting."""

import pytest
from celery import Celery

from protean_celery.broker import AmqpBroker, Broker, MemoryBroker, RedisBroker, broker_for


@pytest.mark.parametrize(
    ("url", "adapter"),
    [
        ("redis://127.0.0.1:1/0", RedisBroker),
        ("rediss://127.0.0.1:1/0", RedisBroker),
        ("redis+socket:///nonexistent/redis.sock", RedisBroker),
        ("sentinel://127.0.0.1:1", RedisBroker),
        ("memory://", MemoryBroker),
        ("amqp://guest:guest@127.0.0.1:1//", AmqpBroker),
        ("pyamqp://guest:guest@127.0.0.1:1//", AmqpBroker),
        ("filesystem://", AmqpBroker),
    ],
)
def test_the_adapter_follows_the_transport_of_the_broker_url(url, adapter):
    broker = broker_for(Celery(broker=url))  # port 1: nothing listens, nothing is connected
    assert type(broker) is adapter
    assert isinstance(broker, Broker)


def test_a_protean_celery_app_gets_the_adapter_of_its_own_broker(shop_app):
    assert type(broker_for(shop_app)) is MemoryBroker
