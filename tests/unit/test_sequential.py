"""``sequential_by``: the lock key of a message, and a message without one refused."""

from types import SimpleNamespace

import pytest

from protean_celery.errors import SequentialKeyMissing
from protean_celery.registry import read_handlers
from protean_celery.sequential import sequential_field, sequential_key
from tests.support.shop import Billing, Ledger, Notifier, build_domain

PLACED = "Shop.OrderPlaced.v1"


def _message(message_type: str, **data):
    headers = SimpleNamespace(type=message_type, id="m-1")
    return SimpleNamespace(data=data, metadata=SimpleNamespace(headers=headers, domain=None))


@pytest.fixture(scope="module")
def specs():
    domain = build_domain()
    domain.register(Ledger, stream_category="shop::order", sequential_by="order_id")
    domain.register(Billing, stream_categories=["shop::order"], sequential_by=True)
    domain.init(traverse=False)
    return {spec.name: spec for spec in read_handlers(domain)}


def test_the_field_is_the_named_one_or_a_process_managers_correlate_field(specs):
    assert sequential_field(specs["Ledger"].handler, PLACED) == "order_id"
    assert sequential_field(specs["Billing"].handler, PLACED) == "order_id"
    assert sequential_field(Notifier, "Shop.OrderShipped.v1") is None
    mapped = SimpleNamespace(meta_=SimpleNamespace(sequential_by=True),
                             _handlers={PLACED: [SimpleNamespace(_correlate={"billing_id": "order_id"})]})
    assert sequential_field(mapped, PLACED) == "order_id"  # correlate={pm_field: event_field}: the event's


def test_messages_sharing_a_value_share_a_key(specs):
    ledger = specs["Ledger"]
    first, second = sequential_key(ledger, _message(PLACED, order_id="o1")), sequential_key(
        ledger, _message(PLACED, order_id="o1"))
    assert first == second == f"{ledger.path}|order_id=o1"
    assert sequential_key(ledger, _message(PLACED, order_id="o2")) != first
    assert sequential_key(specs["Notifier"], _message("Shop.OrderShipped.v1", order_id="o1")) is None


@pytest.mark.parametrize("value", [None, ""])
def test_a_message_without_its_key_is_refused_naming_the_field(specs, value):
    with pytest.raises(SequentialKeyMissing, match="has no 'order_id', which Billing is sequential_by"):
        sequential_key(specs["Billing"], _message(PLACED, order_id=value))
