"""Trace events of handler tasks: started, completed, skipped, failed, acked, nacked, PM transitions, traceparent.

The real emitter writing to Redis, read back by a real Observatory, is
``tests/integration/test_traces.py``.
"""

from __future__ import annotations

import logging

import pytest

from protean_celery.envelope import encode
from protean_celery.testing.drain import drain
from tests.support.traces import TASK, place, record


def test_a_handled_command_is_started_completed_and_acked_by_its_handler(shop_app, recorder):
    message = place(shop_app)
    assert shop_app.tasks[TASK].apply(args=(encode(message),)).get() == "handled"
    assert recorder.names() == ["handler.started", "handler.completed", "message.acked"]
    started, completed = recorder.first("handler.started"), recorder.first("handler.completed")
    assert started["handler"] == "OrderCommands"  # the dispatcher's handler, as Protean's engine names it
    assert started["message_type"] == "Shop.PlaceOrder.v1" and started["stream"] == "shop::order:command"
    assert started["message_id"] == str(message.metadata.headers.id)
    assert started["payload"] == {"order_id": "o1"}
    assert started["correlation_id"] == message.metadata.domain.correlation_id
    assert completed["duration_ms"] >= 0


def test_a_saga_emits_process_manager_transitions_and_outbox_publishes(shop_app, recorder):
    place(shop_app)
    drain(shop_app)
    assert "pm.transition" in recorder.names("Fulfilment")
    transition = recorder.first("pm.transition")
    assert transition["message_type"] == "Shop.OrderPlaced.v1"
    assert transition["metadata"]["pm_type"] == "Fulfilment"
    published = recorder.first("outbox.published")
    assert published["message_type"] == "Shop.OrderPlaced.v1" and published["payload"] == {"order_id": "o1"}


def test_an_expired_command_is_skipped_not_started(shop_app, recorder):
    payload = encode(place(shop_app))
    payload["metadata"]["headers"]["deadline"] = "2000-01-01T00:00:00+00:00"
    assert shop_app.tasks[TASK].apply(args=(payload,)).get() == "expired"
    assert recorder.names() == ["handler.skipped", "message.acked"]
    skipped = recorder.first("handler.skipped")
    assert skipped["status"] == "expired" and skipped["metadata"]["reason"] == "deadline_exceeded"


def test_a_message_the_inbox_already_saw_is_skipped_as_duplicate(sqlite_app, monkeypatch):
    recorder = record(sqlite_app, monkeypatch)
    payload = encode(place(sqlite_app))
    sqlite_app.tasks[TASK].apply(args=(payload,)).get()
    recorder.events.clear()
    assert sqlite_app.tasks[TASK].apply(args=(payload,)).get() == "duplicate"
    assert recorder.names() == ["handler.started", "handler.skipped", "message.acked"]
    assert recorder.first("handler.skipped")["status"] == "duplicate"


@pytest.fixture
def failing_place(monkeypatch):
    from tests.support.shop import OrderCommands

    def fail(self, command):
        raise RuntimeError("warehouse offline")

    monkeypatch.setitem(OrderCommands._handlers, "Shop.PlaceOrder.v1", {fail})


def test_a_failing_handler_is_failed_nacked_and_finally_dead_lettered(shop_app, recorder, failing_place):
    payload = encode(place(shop_app))
    shop_app.tasks[TASK].apply(args=(payload,))  # eager: every retry runs at once
    names = recorder.names()
    budget = shop_app.runtime.retry_policies.for_message(
        shop_app.topology.route(TASK).spec, "Shop.PlaceOrder.v1").max_retries
    assert names.count("handler.failed") == budget + 1
    assert names.count("message.nacked") == budget
    assert names[-2:] == ["message.dlq", "handler.failed"]
    dlq = recorder.first("message.dlq")
    [entry] = shop_app.runtime.dead_letters.list(TASK)
    assert dlq["handler"] == "OrderCommands" and dlq["metadata"]["dead_letter"] == entry.id
    assert dlq["metadata"]["retry_count"] == budget + 1
    assert "warehouse offline" in recorder.first("handler.failed")["error"]
    nacked = recorder.first("message.nacked")
    assert nacked["status"] == "retry" and nacked["metadata"] == {"retry_count": 1, "max_retries": budget}
    assert "message.acked" not in names


def test_a_failing_emitter_never_fails_the_handler_and_warns_once(shop_app, recorder, caplog):
    recorder.fail = True
    with caplog.at_level(logging.WARNING, logger="protean_celery.traces.events"):
        place(shop_app, "o1")
        place(shop_app, "o2")
        report = drain(shop_app)
    assert report.failures == [] and report.tasks >= 6
    warnings = [r for r in caplog.records if "handler.started" in r.getMessage()]
    assert len(warnings) == 1


def test_the_handler_span_continues_the_message_traceparent(shop_app, recorder):
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from protean.utils.eventing import TraceParent

    shop_app.domain._otel_tracer_provider = sdk.TracerProvider()
    shop_app.domain._otel_init_attempted = True
    payload = encode(place(shop_app))
    caller = TraceParent.build("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    payload["metadata"]["headers"]["traceparent"] = caller.to_dict()
    assert shop_app.tasks[TASK].apply(args=(payload,)).get() == "handled"
    with shop_app.domain.domain_context():
        [event] = shop_app.domain.event_store.store.read("shop::order")
    raised = event.metadata.headers.traceparent
    assert raised.trace_id == caller.trace_id  # the same trace
    assert raised.parent_id != caller.parent_id  # a child: the handler task's span
