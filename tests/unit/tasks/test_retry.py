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
from protean_celery.tasks.retry import (
    MAX_RETRY_DELAY,
    Failure,
    Pace,
    RetryPolicy,
    classify,
    deadline_passes,
    resolve_policy,
)
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


def test_a_pace_grows_as_protean_names_it_and_stops_at_its_cap():
    assert [Pace(0.5, 1.2).delay(n) for n in range(3)] == [0.5, 1.0, 1.2]
    assert [Pace(0.5, 10.0, "linear").delay(n) for n in range(3)] == [0.5, 1.0, 1.5]
    assert [Pace(0.5, 10.0, "fixed").delay(n) for n in range(3)] == [0.5, 0.5, 0.5]


def test_protean_transient_retry_sets_the_pace_and_budget_of_transient_failures():
    domain = _domain(transient_retry={"enabled": True, "max_retries": 4, "backoff": "linear",
                                      "base_delay_seconds": 0.2, "max_delay_seconds": 0.5})
    policy = resolve_policy(domain, load_settings(domain.config), Notifier)
    middle = lambda: 0.5  # noqa: E731 - no jitter
    assert policy.budget(Failure.TRANSIENT) == 4
    assert [policy.delay(Failure.TRANSIENT, n, middle) for n in range(4)] == pytest.approx([0.2, 0.4, 0.5, 0.5])
    assert policy.delay(Failure.HANDLER, 0, middle) == 1.0  # handler errors keep their own pace


def test_with_protean_transient_retry_off_the_celery_defaults_hold():
    domain = _domain(transient_retry={"enabled": False, "max_retries": 4, "base_delay_seconds": 0.2})
    policy = resolve_policy(domain, load_settings(domain.config), Notifier)
    assert policy.budget(Failure.TRANSIENT) == 10
    assert policy.delay(Failure.TRANSIENT, 0, lambda: 0.5) == 1.0


def test_custom_celery_transient_retries_beat_protean_budget_not_its_pace():
    domain = _domain(transient_retry={"enabled": True, "max_retries": 4, "base_delay_seconds": 0.2})
    settings = load_settings({"custom": {"celery": {"transient_retries": 7}}})
    policy = resolve_policy(domain, settings, Notifier)
    assert policy.budget(Failure.TRANSIENT) == 7
    assert policy.delay(Failure.TRANSIENT, 0, lambda: 0.5) == pytest.approx(0.2)


def test_an_unknown_protean_backoff_fails_at_start_up():
    from protean.exceptions import ConfigurationError

    domain = _domain(transient_retry={"enabled": True, "backoff": "sideways"})
    with pytest.raises(ConfigurationError, match="sideways"):
        resolve_policy(domain, load_settings(domain.config), Notifier)


def _command(deadline):
    from protean.utils.eventing import Message

    domain = _domain()
    with domain.domain_context():
        domain.process(PlaceOrder(order_id="o1"), deadline=deadline)
        return Message.deserialize(domain.event_store.store._read("shop::order:command")[-1])


def test_a_deadline_passes_before_a_retry_only_when_it_falls_within_the_delay():
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    command = _command(now + timedelta(seconds=30))
    assert deadline_passes(command, 60.0, now)
    assert not deadline_passes(command, 10.0, now)
    assert not deadline_passes(_command(None), 1e6, now)




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


def _failing_command(app_with, deadline_in):
    from datetime import UTC, datetime, timedelta

    from protean.utils.eventing import Message

    app, _payload = app_with(ConnectionRefusedError("payments down"))
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o2"), deadline=datetime.now(UTC) + timedelta(seconds=deadline_in))
        row = app.domain.event_store.store._read("shop::order:command")[-1]
    return app, encode(Message.deserialize(row))


def test_a_command_that_expires_before_its_next_retry_is_acked_as_expired(app_with):
    from protean_celery.tasks import execute

    app, payload = _failing_command(app_with, deadline_in=0.5)  # the first transient retry waits 0.75 s or more
    task = FakeTask(retries=0)
    assert execute(task, app.runtime, app.topology.route(TASK), payload) == "expired"
    assert task.retried_with is None
    assert app.runtime.dead_letters.list() == []


def test_a_command_whose_deadline_is_far_off_is_retried(app_with):
    from protean_celery.tasks import execute

    app, payload = _failing_command(app_with, deadline_in=3600)
    task = FakeTask(retries=0)
    with pytest.raises(Retry):
        execute(task, app.runtime, app.topology.route(TASK), payload)
    assert task.retried_with is not None
