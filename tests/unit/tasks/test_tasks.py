"""The handler task body: outcomes and the failure table."""

import pytest
from celery.exceptions import Reject, Retry

from protean_celery.envelope import encode
from protean_celery.testing.drain import drain
from tests.support.shop import Order, PlaceOrder
from tests.support.tasks import FakeTask

TASK = "protean.shop.commands.Order"


def _command(app, order_id="o1"):
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id=order_id))
        return app.domain.event_store.store.read("shop::order:command")[-1]


def test_a_command_task_runs_its_handler(shop_app):
    message = _command(shop_app)
    assert shop_app.tasks[TASK].apply(args=(encode(message),)).get() == "handled"
    with shop_app.domain.domain_context():
        assert shop_app.domain.repository_for(Order).get("o1").status == "placed"


def test_a_payload_that_is_not_a_message_is_rejected_without_requeue(shop_app):
    with pytest.raises(Reject) as info:
        shop_app.tasks[TASK].run({"hello": "world"})
    assert info.value.requeue is False
    assert "not a Protean message" in str(info.value.reason)


def test_a_tampered_payload_is_rejected(shop_app):
    payload = encode(_command(shop_app))
    payload["data"]["order_id"] = "o666"
    with pytest.raises(Reject):
        shop_app.tasks[TASK].run(payload)


def test_a_type_the_domain_does_not_know_is_rejected(shop_app):
    payload = encode(_command(shop_app))
    payload["metadata"]["headers"]["type"] = "Shop.Unknown.v1"
    with pytest.raises(Reject) as info:
        shop_app.tasks[TASK].run(payload)
    assert "registers no event or command 'Shop.Unknown.v1'" in str(info.value.reason)
    assert "UnknownHandlerError" in shop_app.runtime.dead_letters.list(TASK)[0].error


def test_a_known_type_the_dispatcher_has_no_handler_for_is_rejected(shop_app):
    payload = encode(_command(shop_app))
    payload["metadata"]["headers"]["type"] = "Shop.OrderPlaced.v1"
    with pytest.raises(Reject) as info:
        shop_app.tasks[TASK].run(payload)
    assert "has no handler for Shop.OrderPlaced.v1" in str(info.value.reason)


def test_a_payload_above_max_payload_bytes_is_dead_lettered(shop_app):
    from dataclasses import replace

    shop_app.runtime.settings = replace(shop_app.settings, max_payload_bytes=100)
    with pytest.raises(Reject) as info:
        shop_app.tasks[TASK].run(encode(_command(shop_app)))
    assert "above [custom.celery] max_payload_bytes = 100" in str(info.value.reason)
    assert shop_app.runtime.dead_letters.list(TASK)[0].error.startswith("PayloadTooLarge: ")


def test_a_message_of_another_domain_is_dead_lettered_naming_both(shop_app):
    payload = encode(_command(shop_app))
    payload["metadata"]["headers"]["stream"] = "billing::invoice:command-o1"
    with pytest.raises(Reject) as info:
        shop_app.tasks[TASK].run(payload)
    assert "of domain 'billing', but this worker runs domain 'shop'" in str(info.value.reason)
    [entry] = shop_app.runtime.dead_letters.list(TASK)
    assert entry.error.startswith("ForeignMessageError: ") and entry.payload == payload


def test_an_expired_command_is_skipped(shop_app):
    payload = encode(_command(shop_app))
    payload["metadata"]["headers"]["deadline"] = "2000-01-01T00:00:00+00:00"
    assert shop_app.tasks[TASK].apply(args=(payload,)).get() == "expired"


@pytest.fixture
def failing_place(monkeypatch):
    from tests.support.shop import OrderCommands

    errors = []

    def fail(self, command):
        raise RuntimeError("warehouse offline")

    monkeypatch.setitem(OrderCommands._handlers, "Shop.PlaceOrder.v1", {fail})
    monkeypatch.setattr(OrderCommands, "handle_error", classmethod(lambda cls, exc, msg: errors.append(str(exc))))
    return errors


def test_a_failing_handler_is_retried_with_backoff(shop_app, failing_place):
    from protean_celery.tasks import execute

    task = FakeTask(retries=1)
    with pytest.raises(Retry):
        execute(task, shop_app.runtime, shop_app.topology.route(TASK), encode(_command(shop_app)))
    countdown, max_retries = task.retried_with
    assert 1.5 <= countdown <= 2.5  # 1 s base, doubled once, +-25% jitter
    assert max_retries == 3
    assert failing_place == ["warehouse offline"]  # handle_error ran, as Protean calls it


def test_an_exhausted_handler_raises_its_error(shop_app, failing_place):
    from protean_celery.tasks import execute

    with pytest.raises(RuntimeError, match="warehouse offline"):
        execute(FakeTask(retries=3), shop_app.runtime, shop_app.topology.route(TASK), encode(_command(shop_app)))


def test_poison_is_dead_lettered_with_its_error(shop_app):
    with pytest.raises(Reject):
        shop_app.tasks[TASK].run({"hello": "world"})
    [entry] = shop_app.runtime.dead_letters.list()
    assert entry.task == TASK and entry.payload == {"hello": "world"}
    assert entry.error.startswith("DecodeError: Task payload is not a Protean message")
    assert shop_app.runtime.dead_letters.depth() == {TASK: 1}


def test_an_exhausted_message_is_dead_lettered_and_replays_once_fixed(shop_app, failing_place, monkeypatch):
    from protean_celery.tasks import execute
    from tests.support.shop import OrderCommands

    payload = encode(_command(shop_app))
    shop_app.relay()  # the command left the store for its queue ...
    _purge(shop_app)  # ... and a worker took it, failing on every attempt:
    with pytest.raises(RuntimeError):
        execute(FakeTask(retries=3), shop_app.runtime, shop_app.topology.route(TASK), payload)
    [entry] = shop_app.runtime.dead_letters.list(task=TASK)
    assert (entry.attempts, entry.message_type, entry.category) == (4, "Shop.PlaceOrder.v1", "shop::order:command")
    assert "warehouse offline" in entry.error and "Traceback" in entry.traceback
    monkeypatch.undo()  # the handler is fixed
    assert OrderCommands._handlers["Shop.PlaceOrder.v1"]
    shop_app.runtime.replay(entry.id, shop_app)
    assert shop_app.runtime.dead_letters.list() == []
    report = drain(shop_app)
    assert report.satisfied and not report.failures
    with shop_app.domain.domain_context():
        assert shop_app.domain.repository_for(Order).get("o1").status == "shipped"


def _purge(app):
    with app.connection_for_write() as conn:
        for queue in app.topology.queues:
            queue.bind(conn.default_channel).purge()


def test_a_poison_message_waits_in_the_broker_while_the_dead_letter_store_is_down(shop_app, monkeypatch):
    import sqlalchemy.exc

    def down(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("could not connect to server"))

    task = shop_app.tasks[TASK]
    retried = []
    monkeypatch.setattr(shop_app.runtime.dead_letters, "park", down)
    monkeypatch.setattr(task, "retry", lambda exc, countdown, max_retries: retried.append(max_retries) or Retry(
        exc=exc, when=countdown))
    with pytest.raises(Retry):
        task.run({"hello": "world"})
    assert retried == [None]  # retried until the store takes it: never acked and lost
