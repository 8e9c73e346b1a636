"""Flower's view of a task's arguments: which message, never its data."""

import pytest

from protean_celery.flower import argsrepr
from tests.support.shop import PlaceOrder, build_domain


@pytest.fixture(scope="module")
def command_message():
    domain = build_domain()
    domain.init(traverse=False)
    with domain.domain_context():
        domain.process(PlaceOrder(order_id="secret-customer-42"), asynchronous=True, correlation_id="corr-7")
        return domain.event_store.store.read("shop::order:command")[0]


def test_names_type_stream_id_and_correlation(command_message):
    headers = command_message.metadata.headers
    shown = argsrepr(command_message)
    assert shown == (
        f"{headers.type} stream={headers.stream} id={headers.id} correlation=corr-7"
    )


def test_the_task_payload_reads_the_same_as_the_message(command_message):
    assert argsrepr(command_message.to_dict()) == argsrepr(command_message)


def test_no_payload_data_is_shown(command_message):
    payload = command_message.to_dict()
    payload["data"]["note"] = "card 4111 1111 1111 1111"
    assert "4111" not in argsrepr(payload) and "note" not in argsrepr(payload)


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (None, "<not a Protean message>"),
        ("text", "<not a Protean message>"),
        ({"data": {"x": 1}}, "<not a Protean message>"),
        ({"metadata": {}}, "? stream=? id=? correlation=?"),
        (
            {"metadata": {"headers": {"type": "A.B.v1", "stream": "a::b-1\nX"}}},
            "A.B.v1 stream=a::b-1 X id=? correlation=?",
        ),
    ],
)
def test_partial_or_foreign_payloads_show_what_is_there(message, shown):
    assert argsrepr(message) == shown


def test_a_long_stream_is_cut():
    shown = argsrepr({"metadata": {"headers": {"stream": "s" * 500}}})
    assert len(shown) < 200 and shown.count("s") < 130
