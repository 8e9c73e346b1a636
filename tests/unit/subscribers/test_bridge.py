"""The bridge: a stream's messages become task messages, acknowledged on the broker only once published."""

from unittest import mock

import pytest
from protean.port.broker import BrokerCapabilities

from protean_celery.envelope import task_id
from protean_celery.errors import ConfigurationError, RelayError
from protean_celery.subscribers.bridge import require_consumer_groups
from tests.unit.subscribers.conftest import STREAM, publish, queued


def _route(app):
    [route] = app.subscribers.routes
    return route


def _unacknowledged(app):
    route = _route(app)
    with app.domain.domain_context():
        broker = app.domain.brokers["default"]
        return [message_id for message_id, _ in broker.read(STREAM, route.group, 100)]


def test_each_message_becomes_one_task_message_with_an_id_derived_from_the_broker_s_id(feed_app):
    publish(feed_app, {"ref": "a"}, {"ref": "b"})
    report = feed_app.subscribers.bridge.run("PartnerFeed")
    assert report.published == 2
    route = _route(feed_app)
    found = queued(feed_app, route)
    assert [envelope["payload"] for _, envelope in found] == [{"ref": "a"}, {"ref": "b"}]
    for tid, envelope in found:
        assert envelope["stream"] == STREAM and envelope["broker"] == "default"
        assert tid == task_id(route.task_name, f"default:{STREAM}@{envelope['id']}")
    assert feed_app.subscribers.bridge.run("PartnerFeed").published == 0  # acknowledged: not read again
    assert _unacknowledged(feed_app) == []


def test_a_message_whose_publish_failed_is_not_acknowledged(feed_app):
    publish(feed_app, {"ref": "a"})
    bridge = feed_app.subscribers.bridge
    with mock.patch.object(feed_app, "send_task", side_effect=ConnectionError("broker down")) as send:
        with pytest.raises(RelayError, match="stays pending"):
            bridge.run("PartnerFeed")
    assert queued(feed_app, _route(feed_app)) == []
    [envelope] = send.call_args.kwargs["args"]
    with feed_app.domain.domain_context():
        # Still pending, never acknowledged: the broker can hand it back (nack refuses an acknowledged one).
        assert feed_app.domain.brokers["default"].nack(STREAM, envelope["id"], _route(feed_app).group)


def test_an_unknown_subscriber_name_is_a_configuration_error(feed_app):
    with pytest.raises(ConfigurationError, match="No broker subscriber 'Nope'.*PartnerFeed"):
        feed_app.subscribers.bridge.run("Nope")


def test_a_broker_without_consumer_groups_is_refused_with_the_reason(feed_app):
    broker = feed_app.domain.brokers["default"]
    with mock.patch.object(type(broker), "capabilities", BrokerCapabilities.BASIC_PUBSUB):
        with pytest.raises(ConfigurationError, match="no consumer groups with acknowledgements"):
            require_consumer_groups(feed_app.domain, _route(feed_app))
