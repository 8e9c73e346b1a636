"""Per-handler subscription settings: honoured (origin_stream) or refused at app build, naming key and reason."""

from types import SimpleNamespace

import pytest
from protean.core.event_handler import BaseEventHandler
from protean.utils.mixins import handle

from protean_celery import ProteanCelery
from protean_celery.errors import SubscriptionSettingError
from protean_celery.outbox.cursor import MemoryCursorStore
from protean_celery.subscriptions import from_origin, refusals
from tests.support.shop import OrderPlaced, build_domain


class Audit(BaseEventHandler):
    @handle(OrderPlaced)
    def placed(self, event: OrderPlaced) -> None:
        pass


def _build(domain):
    domain.init(traverse=False)
    return ProteanCelery(domain, config={"broker_url": "memory://"}, cursors=MemoryCursorStore(), nudge=False)


def _with_tables(**tables):
    return build_domain(server={"default_subscription_type": "stream", "subscriptions": tables})


def test_an_app_with_a_key_that_has_no_meaning_here_is_refused_naming_key_and_reason():
    domain = _with_tables(Notifier={"max_retries": 2, "messages_per_tick": 50, "circuit_breaker_threshold": 3})
    with pytest.raises(SubscriptionSettingError) as refused:
        _build(domain)
    text = str(refused.value)
    assert "[server.subscriptions.Notifier] messages_per_tick: workers take one message at a time" in text
    assert "[server.subscriptions.Notifier] circuit_breaker_threshold: there is no circuit breaker" in text
    assert "max_retries" not in text


def test_keys_with_a_meaning_here_build():
    domain = _with_tables(Notifier={"max_retries": 2, "retry_delay_seconds": 1, "enable_dlq": True,
                                    "origin_stream": "shop::order", "subscription_type": "stream",
                                    "profile": "production"})
    assert _build(domain).topology.route("protean.shop.Notifier")


def test_enable_dlq_false_and_a_foreign_stream_category_are_refused():
    domain = _with_tables(Notifier={"enable_dlq": False, "stream_category": "shop::payment"})
    assert [where for where, _ in refusals(domain)] == [
        "[server.subscriptions.Notifier] enable_dlq", "[server.subscriptions.Notifier] stream_category",
    ]
    assert refusals(_with_tables(Notifier={"stream_category": "shop::order"})) == []


def test_meta_subscription_config_is_read_too():
    domain = build_domain()
    domain.register(Audit, stream_category="shop::order", subscription_config={"tick_interval": 5})
    assert refusals(domain) == [("Audit.Meta subscription_config 'tick_interval'",
                                 "workers take one message at a time (prefetch 1), there are no ticks")]


def _from(stream):
    return SimpleNamespace(metadata=SimpleNamespace(domain=SimpleNamespace(origin_stream=stream)))


def test_origin_stream_keeps_only_messages_caused_from_that_category():
    domain = build_domain()
    domain.register(Audit, stream_category="shop::order", source_stream="shop::payment")
    domain.init(traverse=False)
    with domain.domain_context():
        assert from_origin(domain, Audit, _from("shop::payment-p1"))
        assert not from_origin(domain, Audit, _from("shop::order-o1"))
        assert not from_origin(domain, Audit, _from(None))


def test_a_handler_without_origin_stream_takes_everything():
    domain = build_domain()
    domain.register(Audit, stream_category="shop::order")
    domain.init(traverse=False)
    with domain.domain_context():
        assert from_origin(domain, Audit, _from(None))
