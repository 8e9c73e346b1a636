"""Health checks: one component each, bounded, never raising, never quoting a password (Testbed on SQLite)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from protean_celery import health
from tests.support.shop import PlaceOrder

CLOSED = "redis://:s3cret@127.0.0.1:1/0"


@pytest.fixture
def app(sqlite_app):
    return sqlite_app


def _by_name(checks):
    return {check.name: check for check in checks}


def test_readiness_with_everything_set_up_fails_only_for_want_of_a_worker(app):
    checks = _by_name(health.readiness(app, timeout=1))
    assert [name for name, check in checks.items() if not check.ok] == ["workers"]
    assert set(checks) == {"broker", "database", "state_database", "event_store", "tables", "relay", "workers"}


def test_an_unreachable_broker_is_named_without_its_password(app):
    app.conf.broker_url = CLOSED
    check = health.broker(app, timeout=2)
    assert not check.ok and check.detail.startswith("cannot reach redis://:***@127.0.0.1:1/0")
    assert _by_name(health.readiness(app, timeout=2))["workers"].detail.startswith("cannot be asked")


def test_missing_tables_are_named_with_the_command_that_creates_them(app):
    with app.runtime.inbox.engine.begin() as connection:
        connection.execute(text("DROP TABLE protean_celery_inbox"))
        connection.execute(text("DROP TABLE protean_events"))
        connection.execute(text("DROP TABLE protean_celery_deadlines"))
    tables, store = health.tables(app), health.event_store(app)
    assert not tables.ok and "protean_celery_inbox" in tables.detail and "protean db setup" in tables.detail
    assert "protean_celery_deadlines" in tables.detail
    assert not store.ok and "protean_events" in store.detail


def test_the_relay_check_fails_when_an_outbox_row_waited_past_three_ticks(app):
    app.process(PlaceOrder(order_id="o1"), asynchronous=False)  # no nudge: the row waits for a tick
    assert health.relay(app).ok  # just written
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None)
    with app.runtime.inbox.engine.begin() as connection:
        connection.execute(text("UPDATE outbox SET created_at = :t"), {"t": an_hour_ago})
    check = health.relay(app)
    assert not check.ok and "beat" in check.detail
    app.relay()  # a tick publishes it
    assert health.relay(app).ok


def test_liveness_without_a_worker_is_the_broker_answering(app):
    assert [(check.name, check.ok) for check in health.liveness(app, timeout=1)] == [("broker", True)]
    app.conf.broker_url = CLOSED
    assert [(check.name, check.ok) for check in health.liveness(app, timeout=2)] == [
        ("broker", False), ("workers", False),
    ]


def test_liveness_of_a_named_worker_that_does_not_run_fails(app):
    [check] = health.liveness(app, timeout=1, node="celery@nowhere")
    assert not check.ok and "celery@nowhere" in check.detail

