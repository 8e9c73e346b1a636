"""The checks a payload passes before a handler runs: size, domain, type."""

import pickle

import pytest
from protean.utils.eventing import Message

from protean_celery.errors import DecodeError, ForeignMessageError, PayloadTooLarge, UnknownHandlerError
from protean_celery.intake import category_of, check_domain, check_size, check_type, payload_size
from protean_celery.registry import HandlerKind, HandlerSpec

SPEC = HandlerSpec(kind=HandlerKind.EVENT_HANDLER, name="Notifier", path="shop.Notifier", categories=("shop::order",))
KNOWN = {"Shop.OrderPlaced.v1", "Billing.InvoicePaid.v1"}  # the second one registered as an external event


def _message(type_="Shop.OrderPlaced.v1", stream="shop::order-o1", category=None):
    return Message.deserialize(
        {
            "data": {"order_id": "o1"},
            "metadata": {
                "headers": {"id": "m1", "type": type_, "stream": stream},
                "domain": {"kind": "EVENT", "stream_category": category},
            },
        },
        validate=False,
    )


def test_the_size_is_compact_utf8_json():
    assert payload_size({"a": "é"}) == len('{"a":"é"}'.encode())


def test_a_payload_at_the_limit_passes_and_one_byte_more_does_not():
    payload = {"data": "x" * 100}
    size = payload_size(payload)
    check_size(payload, size, "t")
    with pytest.raises(PayloadTooLarge) as info:
        check_size(payload, size - 1, "protean.shop.Notifier")
    error = info.value
    assert isinstance(error, DecodeError)
    assert (error.size, error.limit) == (size, size - 1)
    assert "protean.shop.Notifier" in str(error) and "max_payload_bytes" in str(error)
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_zero_means_no_limit():
    check_size({"data": "x" * 10_000}, 0, "t")


def test_the_category_is_the_metadata_one_else_the_stream_prefix():
    assert category_of(_message(category="shop::order")) == "shop::order"
    assert category_of(_message(stream="shop::order:command-o1-2")) == "shop::order:command"
    assert category_of(_message(stream=None)) is None


def test_messages_of_this_domain_pass():
    check_domain(_message(), SPEC, "shop", "Shop", KNOWN)
    check_domain(_message(stream="order-o1"), SPEC, "shop", "Shop", KNOWN)  # no domain in the category


def test_a_category_of_another_domain_names_both_domains():
    with pytest.raises(ForeignMessageError) as info:
        check_domain(_message(stream="billing::invoice-i1"), SPEC, "shop", "Shop", KNOWN)
    assert "'billing'" in str(info.value) and "'shop'" in str(info.value)
    assert (info.value.message_domain, info.value.domain) == ("billing", "shop")


def test_a_category_the_handler_subscribes_to_is_not_foreign():
    spec = HandlerSpec(kind=HandlerKind.EVENT_HANDLER, name="N", path="shop.N", categories=("billing::invoice",))
    check_domain(_message(type_="Billing.InvoicePaid.v1", stream="billing::invoice-i1"), spec, "shop", "Shop", KNOWN)


def test_a_type_of_another_domain_is_foreign_unless_registered():
    with pytest.raises(ForeignMessageError, match="domain 'Billing'.*runs domain 'Shop'"):
        check_domain(_message(type_="Billing.InvoiceVoided.v1"), SPEC, "shop", "Shop", KNOWN)
    check_domain(_message(type_="Billing.InvoicePaid.v1"), SPEC, "shop", "Shop", KNOWN)


def test_a_type_nothing_resolves_is_an_unknown_handler_error():
    check_type(_message(), SPEC, {"Shop.OrderPlaced.v1": object}.get)
    with pytest.raises(UnknownHandlerError, match="registers no event or command 'Shop.Gone.v1'"):
        check_type(_message(type_="Shop.Gone.v1"), SPEC, {}.get)
