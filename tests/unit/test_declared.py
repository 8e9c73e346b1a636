"""``unhonoured(domain)``: each declared feature protean-celery does not honour is named."""

import pytest
from protean.core.subscriber import BaseSubscriber

from protean_celery.declared import unhonoured
from tests.support.shop import Billing, Ledger, build_domain


class OrderFeed(BaseSubscriber):
    def __call__(self, payload: dict) -> None:
        pass


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


def test_priority_lanes_are_honoured_so_not_named():
    domain = build_domain(server={"default_subscription_type": "stream", "priority_lanes": {"enabled": True}})
    assert _features(domain) == []


def test_external_brokers_are_honoured_so_not_named():
    domain = build_domain(outbox={"external_brokers": ["analytics"]},
                          brokers={"default": {"provider": "inline"}, "analytics": {"provider": "inline"}})
    assert unhonoured(domain) == []


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (Billing, {"stream_categories": ["shop::order"], "sequential_by": True}),
        (Ledger, {"stream_category": "shop::order", "sequential_by": "order_id"}),
    ],
)
def test_sequential_by_is_honoured_so_not_named(cls, options):
    domain = build_domain()
    domain.register(cls, **options)
    assert _features(domain) == []


def test_subscription_keys_without_a_meaning_here_are_named_with_the_reason():
    domain = build_domain(server={"default_subscription_type": "stream", "subscriptions": {
        "Notifier": {"max_retries": 5, "retry_delay_seconds": 2, "messages_per_tick": 50, "enable_dlq": True,
                     "origin_stream": "shop::payment", "subscription_type": "stream"},
        "Fulfilment": {"circuit_breaker_threshold": 3, "enable_dlq": False, "made_up": 1},
    }})
    items = {item.feature: item.reason for item in unhonoured(domain)}
    assert list(items) == [
        "[server.subscriptions.Fulfilment] circuit_breaker_threshold",
        "[server.subscriptions.Fulfilment] enable_dlq",
        "[server.subscriptions.Fulfilment] made_up",
        "[server.subscriptions.Notifier] messages_per_tick",
    ]
    assert "there is no circuit breaker" in items["[server.subscriptions.Fulfilment] circuit_breaker_threshold"]
    assert "never discards a message" in items["[server.subscriptions.Fulfilment] enable_dlq"]
    assert "not a Protean subscription setting" in items["[server.subscriptions.Fulfilment] made_up"]
    assert all(reason.startswith("not honoured by protean-celery: ") for reason in items.values())


def test_meta_subscription_config_keys_are_named_too():
    domain = build_domain()
    domain.register(Ledger, stream_category="shop::order", subscription_config={"messages_per_tick": 5})
    assert _features(domain) == ["Ledger.Meta subscription_config 'messages_per_tick'"]


def test_async_events_with_the_outbox_off_are_honoured():
    # The event store relay delivers them (outbox/events.py): nothing to name.
    domain = build_domain(enable_outbox=False, server={"default_subscription_type": "event_store"},
                          event_processing="async")
    assert unhonoured(domain) == []
