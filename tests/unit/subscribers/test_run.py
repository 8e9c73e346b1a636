"""Running a subscriber as Protean's server does: payload in, message context set, handled once with the inbox."""

import pytest

from protean_celery.subscribers.delivery import Delivery
from protean_celery.subscribers.run import run_subscriber
from tests.support.shop import Order
from tests.unit.subscribers.conftest import SEEN, STREAM, PartnerFeed


def _delivery(payload, message_id="1-0"):
    return Delivery("default", STREAM, message_id, payload)


def test_the_subscriber_gets_the_payload_and_protean_s_broker_message_context(feed_app):
    payload = {"ref": "a", "metadata": {"headers": {"id": "evt-9"}, "domain": {"correlation_id": "corr-1"}}}
    assert run_subscriber(feed_app.domain, PartnerFeed, _delivery(payload)) is True
    [(seen, context)] = SEEN
    assert seen == payload
    assert context.metadata.domain.kind == "BROKER_MESSAGE"
    assert context.metadata.domain.correlation_id == "corr-1"
    assert (context.metadata.headers.id, context.metadata.headers.stream) == ("evt-9", STREAM)  # the source's id


def test_a_raw_message_gets_the_broker_s_id_and_a_new_correlation(feed_app):
    run_subscriber(feed_app.domain, PartnerFeed, _delivery({"ref": "a"}, "7-3"))
    [(_, context)] = SEEN
    assert context.metadata.headers.id == "7-3" and context.metadata.domain.correlation_id


def test_a_failure_calls_handle_error_and_is_raised(feed_app):
    with pytest.raises(RuntimeError, match="cannot read b"):
        run_subscriber(feed_app.domain, PartnerFeed, _delivery({"ref": "b", "fail": True}))
    assert PartnerFeed.errors == ["cannot read b"]


def test_with_the_inbox_a_second_delivery_of_one_message_does_not_run_the_subscriber(sqlite_feed_app):
    app = sqlite_feed_app
    delivery = _delivery({"ref": "o1"})
    assert run_subscriber(app.domain, PartnerFeed, delivery, app.runtime.inbox) is True
    assert run_subscriber(app.domain, PartnerFeed, delivery, app.runtime.inbox) is False
    assert len(SEEN) == 1
    with app.domain.domain_context():
        assert app.domain.repository_for(Order).get("o1").order_id == "o1"
    assert run_subscriber(app.domain, PartnerFeed, _delivery({"ref": "o2"}, "2-0"), app.runtime.inbox) is True
