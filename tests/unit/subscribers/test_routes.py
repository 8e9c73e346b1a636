"""Subscribers → tasks, queues and bridge ticks; a broker that is not configured is refused at build."""

import pytest
from protean.core.subscriber import BaseSubscriber

from protean_celery.errors import ConfigurationError, TopologyError
from protean_celery.subscribers.routes import bridge_entries, bridge_task_name, read_subscribers
from tests.unit.subscribers.conftest import STREAM, feed_domain


class Notifier(BaseSubscriber):  # the shop's event handler has this name
    def __call__(self, payload: dict) -> None:
        pass


def test_each_subscriber_gets_a_task_and_queue_named_after_it_and_protean_s_consumer_group():
    [route] = read_subscribers(feed_domain(), "protean")
    assert (route.name, route.broker, route.stream) == ("PartnerFeed", "default", STREAM)
    assert route.task_name == route.queue.name == route.exchange.name == "protean.shop.PartnerFeed"
    assert route.group == route.path == "tests.unit.subscribers.conftest.PartnerFeed"
    assert route.queue.routing_key == route.task_name and route.queue.durable


def test_a_subscriber_on_a_broker_that_is_not_configured_names_the_fix():
    domain = feed_domain()
    domain.register(Notifier, broker="partners", stream="x")
    with pytest.raises(ConfigurationError) as info:
        read_subscribers(domain)
    message = str(info.value)
    assert "broker 'partners'" in message and "configured: default" in message
    assert "Add [brokers.partners] to domain.toml" in message


def test_a_subscriber_whose_task_name_a_handler_has_is_refused():
    domain = feed_domain()
    domain.register(Notifier, stream="x")
    with pytest.raises(TopologyError, match="rename one of the classes"):
        read_subscribers(domain, taken=["protean.shop.Notifier"])


def test_the_bridge_ticks_once_per_subscriber_on_the_relay_queue_and_expires_after_one_interval():
    routes = read_subscribers(feed_domain())
    task = bridge_task_name("protean", "shop")
    assert task == "protean.shop.relay.subscribers"
    assert bridge_entries(routes, task, "protean.shop.relay", 2.0) == {
        "protean.shop.relay.subscribers[PartnerFeed]": {
            "task": task, "schedule": 2.0, "kwargs": {"subscriber": "PartnerFeed"},
            "options": {"queue": "protean.shop.relay", "expires": 2.0},
        }
    }
