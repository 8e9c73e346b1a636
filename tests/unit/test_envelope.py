import copy
import json

import pytest

from protean_celery import envelope
from protean_celery.errors import DecodeError
from tests.support.shop import PlaceOrder, build_domain


@pytest.fixture(scope="module")
def command_message():
    domain = build_domain()
    domain.init(traverse=False)
    with domain.domain_context():
        domain.process(PlaceOrder(order_id="o1"), asynchronous=True)
        return domain.event_store.store.read("shop::order:command")[0]


def test_payload_is_plain_json_and_round_trips(command_message):
    payload = json.loads(json.dumps(envelope.encode(command_message)))
    assert envelope.decode(payload).to_dict() == command_message.to_dict()


def test_tampered_payload_fails_the_checksum(command_message):
    payload = copy.deepcopy(envelope.encode(command_message))  # encode shares the message's data dict
    payload["data"]["order_id"] = "o2"
    with pytest.raises(DecodeError, match="failed Protean's checksum check"):
        envelope.decode(payload)


def test_a_payload_without_a_checksum_is_refused_unless_unsigned_messages_are_accepted(command_message):
    payload = copy.deepcopy(envelope.encode(command_message))
    payload["metadata"]["envelope"]["checksum"] = None
    with pytest.raises(DecodeError, match="has no checksum"):
        envelope.decode(payload)
    del payload["metadata"]["envelope"]
    with pytest.raises(DecodeError, match="has no checksum"):
        envelope.decode(payload)
    assert envelope.decode(payload, require_checksum=False).data == payload["data"]


def test_decoding_leaves_the_payload_as_it_arrived():
    payload = {"data": {}, "metadata": {"headers": {}}}
    envelope.decode(payload, require_checksum=False)  # Protean's DeserializationError comes later, from the handler
    assert payload == {"data": {}, "metadata": {"headers": {}}}  # Protean fills parts in place


@pytest.mark.parametrize("payload", [None, "text", [1, 2], {"data": {}}])
def test_non_messages_are_decode_errors(payload):
    with pytest.raises(DecodeError, match="not a Protean message"):
        envelope.decode(payload)


def test_a_command_key_is_its_place_in_the_store_not_its_id(command_message):
    assert command_message.metadata.headers.id == "o1"
    assert envelope.message_key(command_message) == "shop::order:command-o1@0"


def test_task_ids_are_deterministic_per_handler():
    assert envelope.task_id("a", "k") == envelope.task_id("a", "k")
    assert envelope.task_id("a", "k") != envelope.task_id("b", "k")
