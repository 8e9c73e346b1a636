"""The subscriber task's argument: what passes, and what is poison (dead-lettered, never dropped)."""

import re

import pytest

from protean_celery.errors import DecodeError
from protean_celery.subscribers.delivery import delivery_key, describe_delivery, unwrap, wrap


def test_a_wrapped_message_unwraps_to_its_delivery_keyed_by_broker_stream_and_id():
    delivery = unwrap(wrap("partners", "orders", "17-0", {"ref": "a"}))
    assert (delivery.broker, delivery.stream, delivery.id, delivery.payload) == ("partners", "orders", "17-0",
                                                                                 {"ref": "a"})
    assert delivery.key == delivery_key("partners", "orders", "17-0") == "partners:orders@17-0"


def test_the_raw_entry_rides_along_only_when_given():
    assert "raw" not in wrap("b", "s", "1-0", {"a": 1})
    assert wrap("b", "s", "1-0", {}, raw={"data": "{oops"})["raw"] == {"data": "{oops"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [([1, 2], "not an object (list)"), ("text", "not an object (str)"), ({}, "empty or not JSON")],
)
def test_a_payload_that_is_not_a_json_object_is_poison(payload, reason):
    with pytest.raises(DecodeError, match=re.escape(reason)):
        unwrap(wrap("b", "s", "1-0", payload))


@pytest.mark.parametrize("envelope", [None, {"payload": {"a": 1}}, ["b", "s"]])
def test_an_argument_that_is_not_an_envelope_is_poison(envelope):
    with pytest.raises(DecodeError, match="not a broker message envelope"):
        unwrap(envelope)


def test_log_lines_and_flower_show_where_a_message_came_from_never_its_data():
    shown = describe_delivery(wrap("b", "orders", "5-1", {"card": "4111"}))
    assert shown == "stream=orders id=5-1" and "4111" not in shown
    assert describe_delivery("junk") == "<not a broker message envelope>"
