"""``unhonoured(domain)``: each declared feature protean-celery does not honour is named."""

import pytest
from protean.core.event_handler import BaseEventHandler
from protean.core.process_manager import BaseProcessManager
from protean.core.subscriber import BaseSubscriber
from protean.fields import Identifier, String
from protean.utils.mixins import handle

from protean_celery.declared import unhonoured
from tests.support.shop import OrderPlaced, build_domain


class OrderFeed(BaseSubscriber):
    def __call__(self, payload: dict) -> None:
        pass


class Ledger(BaseEventHandler):
    @handle(OrderPlaced)
    def placed(self, event: OrderPlaced) -> None:
        pass


class Billing(BaseProcessManager):
    order_id = Identifier()
    state = String()

    @handle(OrderPlaced, start=True, correlate="order_id")
    def placed(self, event: OrderPlaced) -> None:
        self.state = "billing"


def _features(domain) -> list[str]:
    return [item.feature for item in unhonoured(domain)]


def test_the_shop_domain_declares_nothing_unhonoured():
    assert unhonoured(build_domain()) == []


def test_a_broker_subscriber_is_honoured_now():
    domain = build_domain()
    domain.register(OrderFeed, stream="partner_orders")
    assert unhonoured(domain) == []


def test_broker_subscription_retries_are_honoured_but_discarding_and_other_keys_are_named():
    domain = build_domain(server={"default_subscription_type": "stream", "broker_subscription": {
        "max_retries": 2, "retry_delay_seconds": 0.5, "enable_dlq": False, "messages_per_tick": 5,
    }})
    items = {item.feature: str(item) for item in unhonoured(domain)}
    assert sorted(items) == [
        "[server.broker_subscription] enable_dlq = false", "[server.broker_subscription] messages_per_tick",
    ]
    assert "always dead-lettered" in items["[server.broker_subscription] enable_dlq = false"]
    assert unhonoured(build_domain(server={"default_subscription_type": "stream",
                                           "broker_subscription": {"enable_dlq": True}})) == []


def test_priority_lanes_are_named_only_when_enabled():
    assert _features(build_domain(server={"default_subscription_type": "stream",
                                          "priority_lanes": {"enabled": False}})) == []
    domain = build_domain(server={"default_subscription_type": "stream", "priority_lanes": {"enabled": True}})
    assert _features(domain) == ["[server.priority_lanes] enabled = true"]


def test_external_brokers_are_not_relayed_yet():
    domain = build_domain(outbox={"external_brokers": ["analytics"]})
    [item] = unhonoured(domain)
    assert str(item) == (
        "[outbox] external_brokers = ['analytics']: "
        "outbox rows for external brokers are not relayed by protean-celery yet."
    )


@pytest.mark.parametrize(
    ("cls", "options", "feature"),
    [
        (Billing, {"stream_categories": ["shop::order"], "sequential_by": True},
         "Process manager Billing sequential_by = True"),
        (Ledger, {"stream_category": "shop::order", "sequential_by": "order_id"},
         "Event handler Ledger sequential_by = 'order_id'"),
    ],
)
def test_sequential_by_is_named_with_the_handler(cls, options, feature):
    domain = build_domain()
    domain.register(cls, **options)
    assert _features(domain) == [feature]


def test_subscription_keys_other_than_retries_are_named_with_the_reason():
    domain = build_domain(server={"default_subscription_type": "stream", "subscriptions": {
        "Notifier": {"max_retries": 5, "retry_delay_seconds": 2, "messages_per_tick": 50, "enable_dlq": True},
        "Fulfilment": {"circuit_breaker_threshold": 3, "enable_dlq": False, "made_up": 1},
    }})
    items = {item.feature: item.reason for item in unhonoured(domain)}
    assert list(items) == [
        "[server.subscriptions.Fulfilment] circuit_breaker_threshold",
        "[server.subscriptions.Fulfilment] enable_dlq",
        "[server.subscriptions.Fulfilment] made_up",
        "[server.subscriptions.Notifier] messages_per_tick",
    ]
    assert "no circuit breaker yet" in items["[server.subscriptions.Fulfilment] circuit_breaker_threshold"]
    assert "does not read this key" in items["[server.subscriptions.Fulfilment] made_up"]
    assert all("only max_retries and retry_delay_seconds are read" in reason for reason in items.values())


def test_meta_subscription_config_keys_are_named_too():
    domain = build_domain()
    domain.register(Ledger, stream_category="shop::order", subscription_config={"messages_per_tick": 5})
    assert _features(domain) == ["Ledger.Meta subscription_config 'messages_per_tick'"]


def test_async_events_with_the_outbox_off_are_honoured():
    # The event store relay delivers them (outbox/events.py): nothing to name.
    domain = build_domain(enable_outbox=False, server={"default_subscription_type": "event_store"},
                          event_processing="async")
    assert unhonoured(domain) == []
