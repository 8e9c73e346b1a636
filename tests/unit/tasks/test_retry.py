"""The retry table: failure kinds, budgets, pace, and where a handler's retry settings come from."""

import sqlite3

import pytest
import sqlalchemy.exc
from celery.exceptions import Retry
from protean.exceptions import ExpectedVersionError, TransactionError

from protean_celery import ProteanCelery
from protean_celery.envelope import encode
from protean_celery.outbox.cursor import MemoryCursorStore
from protean_celery.settings import load_settings
from protean_celery.tasks.retry import MAX_RETRY_DELAY, Failure, RetryPolicy, classify, resolve_policy
from tests.support.shop import Fulfilment, Notifier, OrderCommands, PlaceOrder, build_domain
from tests.support.tasks import FakeTask

TASK = "protean.shop.commands.Order"


def _operational_error():
    return sqlalchemy.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))


def _wrapped(cause):
    try:
        try:
            raise cause
        except Exception as exc:
            raise TransactionError("Unit of Work commit failed") from exc
    except TransactionError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ExpectedVersionError("stream moved on"), Failure.CONFLICT),
        (ConnectionRefusedError("redis down"), Failure.TRANSIENT),
        (TimeoutError("read timed out"), Failure.TRANSIENT),
        (_operational_error(), Failure.TRANSIENT),
        (_wrapped(_operational_error()), Failure.TRANSIENT),
        (ExceptionGroup("several", [ValueError("x"), ConnectionResetError("y")]), Failure.TRANSIENT),
        (ValueError("credit limit exceeded"), Failure.HANDLER),
        (_wrapped(KeyError("sku")), Failure.HANDLER),
    ],
)
def test_errors_are_classified_through_their_whole_chain(error, kind):
    assert classify(error) is kind


def test_each_failure_kind_has_its_own_budget_and_pace():
    policy = RetryPolicy(max_retries=2, retry_delay_seconds=4.0, version_retries=5, transient_retries=10)
    middle = lambda: 0.5  # noqa: E731 - no jitter
    assert policy.budget(Failure.HANDLER) == 2
    assert policy.budget(Failure.TRANSIENT) == policy.budget(Failure.CONFLICT) == 10
    assert [policy.delay(Failure.HANDLER, n, middle) for n in range(3)] == [4.0, 8.0, 16.0]
    assert [policy.delay(Failure.TRANSIENT, n, middle) for n in range(3)] == [1.0, 2.0, 4.0]
    assert policy.delay(Failure.TRANSIENT, 40, middle) == MAX_RETRY_DELAY
    assert policy.delay(Failure.CONFLICT, 0, middle) == pytest.approx(0.05)
    assert policy.delay(Failure.CONFLICT, 20, middle) == 5.0
    assert 0.75 <= policy.delay(Failure.TRANSIENT, 0) <= 1.25


def _domain(**server):
    domain = build_domain()
    domain.config["server"].update(server)
    domain.init(traverse=False)
    return domain


def test_protean_defaults_apply_when_nothing_is_set():
    policy = resolve_policy(_domain(), load_settings({}), Notifier)
    assert (policy.max_retries, policy.retry_delay_seconds, policy.version_retries) == (3, 1.0, 5)
    assert policy.transient_retries == 10


def test_protean_server_settings_feed_every_handler():
    domain = _domain(stream_subscription={"max_retries": 6, "retry_delay_seconds": 2})
    policy = resolve_policy(domain, load_settings(domain.config), Notifier)
    assert (policy.max_retries, policy.retry_delay_seconds) == (6, 2.0)


def test_custom_celery_defaults_beat_protean_server_defaults_but_not_a_handlers_own_table():
    domain = _domain(
        stream_subscription={"max_retries": 6},
        subscriptions={"Fulfilment": {"max_retries": 8}},
    )
    settings = load_settings({"custom": {"celery": {"max_retries": 1}}})
    assert resolve_policy(domain, settings, Notifier).max_retries == 1
    assert resolve_policy(domain, settings, Fulfilment).max_retries == 8


def test_a_custom_celery_handler_table_beats_everything():
    domain = _domain(subscriptions={"Fulfilment": {"max_retries": 8}})
    settings = load_settings({"custom": {"celery": {"handlers": {"Fulfilment": {"max_retries": 0}}}}})
    assert resolve_policy(domain, settings, Fulfilment).max_retries == 0


def test_a_protean_profile_on_the_handler_sets_its_retries():
    domain = _domain(subscriptions={"Notifier": {"profile": "fast"}})
    settings = load_settings({"custom": {"celery": {"max_retries": 9}}})
    policy = resolve_policy(domain, settings, Notifier)
    assert (policy.max_retries, policy.retry_delay_seconds) == (2, 0.0)  # Protean's "fast" profile




@pytest.fixture
def app_with(monkeypatch):
    def build(error, **server):
        domain = _domain(**server)
        app = ProteanCelery(domain, config={"broker_url": "memory://"}, cursors=MemoryCursorStore(), nudge=False)

        def fail(self, command):
            raise error

        monkeypatch.setitem(OrderCommands._handlers, "Shop.PlaceOrder.v1", {fail})
        with domain.domain_context():
            domain.process(PlaceOrder(order_id="o1"))
            payload = encode(domain.event_store.store.read("shop::order:command")[-1])
        return app, payload

    return build


def test_a_transient_error_gets_the_transient_budget(app_with):
    from protean_celery.tasks import execute

    app, payload = app_with(_wrapped(_operational_error()))
    task = FakeTask(retries=5)  # past the handler's 3, within the transient 10
    with pytest.raises(Retry):
        execute(task, app.runtime, app.topology.route(TASK), payload)
    countdown, budget = task.retried_with
    assert budget == 10 and 24 <= countdown <= 40


def test_a_handler_error_uses_the_command_handlers_protean_settings(app_with):
    from protean_celery.tasks import execute

    app, payload = app_with(ValueError("bad sku"), subscriptions={"OrderCommands": {"max_retries": 1}})
    task = FakeTask(retries=0)
    with pytest.raises(Retry):
        execute(task, app.runtime, app.topology.route(TASK), payload)
    assert task.retried_with[1] == 1
    with pytest.raises(ValueError, match="bad sku"):
        execute(FakeTask(retries=1), app.runtime, app.topology.route(TASK), payload)
    assert [entry.error for entry in app.runtime.dead_letters.list()] == ["ValueError: bad sku"]
