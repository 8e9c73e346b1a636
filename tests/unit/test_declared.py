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


def test_a_broker_subscriber_is_named():
    domain = build_domain()
    domain.register(OrderFeed, stream="partner_orders")
    [item] = unhonoured(domain)
    assert item.feature == "Broker subscriber OrderFeed (broker 'default', stream 'partner_orders')"
    assert "never handled" in str(item)


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
