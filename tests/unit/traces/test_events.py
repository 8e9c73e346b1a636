"""The emitter check, message facts and dead-letter events (a recording emitter, the memory broker).

The real emitter writing to Redis, read back by a real Observatory, is
``tests/integration/test_traces.py``.
"""

from __future__ import annotations

from protean_celery.testing.drain import drain
from protean_celery.traces import events
from tests.support.traces import TASK, place


def test_a_payload_that_is_not_a_message_is_only_dead_lettered(shop_app, recorder):
    shop_app.tasks[TASK].apply(args=({"hello": "world"},))
    assert recorder.names() == ["message.dlq"]
    assert recorder.first("message.dlq")["message_id"] == "unknown"


def test_nothing_is_built_when_no_one_listens(shop_app, recorder):
    recorder.listening = False
    place(shop_app)
    drain(shop_app)
    assert recorder.events == []


def test_the_listening_check_asks_protean_emitter(shop_app, monkeypatch):
    asked = []
    monkeypatch.setattr(events, "trace_listening", lambda emitter: asked.append(emitter) or False)
    assert events.listening(shop_app.domain) is False
    assert asked == [shop_app.domain.trace_emitter]


def test_message_facts_of_a_payload_without_headers_say_unknown():
    facts = events.MessageFacts.of_payload({"data": {}, "metadata": {"headers": "nonsense"}})
    assert facts is not None and (facts.message_id, facts.stream) == ("unknown", "unknown")
    assert events.MessageFacts.of_payload(["not", "a", "message"]) is None


class _Row:
    """An outbox row as the relay has it (Protean's ``Outbox`` entity, the fields a trace reads)."""

    def __init__(self, row_id: int, message_id: str) -> None:
        from protean.utils.eventing import DomainMeta, MessageHeaders, Metadata

        self.id, self.message_id, self.type = row_id, message_id, "Shop.OrderPlaced.v1"
        self.data = {"order_id": message_id}
        self.metadata_ = Metadata(
            headers=MessageHeaders(id=message_id), domain=DomainMeta(stream_category="shop::order")
        )
        self.correlation_id, self.causation_id, self.retry_count = "c1", "o1", 2


def test_relayed_rows_are_published_or_failed_by_their_outcome(shop_app, recorder):
    rows = [_Row(1, "e1"), _Row(2, "e2"), _Row(3, "e3")]
    events.relayed(shop_app.domain, rows, {1: None, 2: ValueError("too large")}, "relay-1")
    assert recorder.names() == ["outbox.published", "outbox.failed"]  # row 3 was not relayed this time
    published, failed = recorder.events
    assert (published["message_id"], published["stream"], published["payload"]) == ("e1", "shop::order",
                                                                                      {"order_id": "e1"})
    assert published["worker_id"] == "relay-1" and published["correlation_id"] == "c1"
    assert failed["error"] == "too large" and failed["metadata"] == {"retry_count": 2}


def test_rows_for_an_external_broker_get_protean_external_names(shop_app, recorder):
    events.relayed(shop_app.domain, [_Row(1, "e1"), _Row(2, "e2")], {1: None, 2: OSError("down")}, "r", external=True)
    assert recorder.names() == ["outbox.external_published", "outbox.external_failed"]


def test_a_hook_that_fails_never_raises_into_the_relay(shop_app, recorder):
    events.relayed(shop_app.domain, [object()], {1: None}, "r")  # not an outbox row at all
    assert recorder.events == []
