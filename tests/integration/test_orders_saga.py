"""The orders saga through a real `celery worker -c 2` and a real Redis, on SQLite files."""

import pytest
import sqlalchemy as sa

from tests.integration.orders import rows, run_orders, succeeded_task_ids

pytestmark = pytest.mark.integration

ORDERS = 200


@pytest.fixture(scope="module")
def saga_run(redis_server, tmp_path_factory):
    state = tmp_path_factory.mktemp("orders")
    run = run_orders(state, ORDERS, broker=redis_server.url)
    assert run.returncode == 0, run.output
    return run


@pytest.fixture(scope="module")
def orders_db(saga_run):
    return sa.create_engine(f"sqlite:///{saga_run.state}/orders.db")


@pytest.fixture(scope="module")
def events_db(saga_run):
    return sa.create_engine(f"sqlite:///{saga_run.state}/events.db")


def test_every_order_ends_completed_or_compensated(saga_run, orders_db):
    statuses = dict(rows(orders_db, 'SELECT status, count(*) FROM "order" GROUP BY status'))
    declined = rows(orders_db, "SELECT count(*) FROM payment WHERE status = 'DECLINED'")[0][0]
    assert sum(statuses.values()) == ORDERS
    assert set(statuses) <= {"COMPLETED", "CANCELLED"}
    assert statuses.get("CANCELLED", 0) == declined > 0
    assert saga_run.figure("sagas completed") + saga_run.figure("sagas compensated") == ORDERS


def test_the_projection_matches_the_aggregates(orders_db):
    mismatched = rows(
        orders_db,
        'SELECT o.order_id, o.status, s.status FROM "order" o LEFT JOIN order_summary s '
        "ON s.order_id = o.order_id WHERE s.status IS NULL OR s.status != o.status",
    )
    assert mismatched == []


def test_the_side_effect_ran_once_per_shipped_order(orders_db):
    shipped = rows(orders_db, "SELECT count(*) FROM shipment WHERE status = 'DELIVERED'")[0][0]
    calls = rows(orders_db, "SELECT count(*), min(attempts), max(attempts) FROM courier_call")[0]
    assert calls == (shipped, 1, 1)


def test_every_outbox_row_is_published(orders_db):
    assert dict(rows(orders_db, "SELECT status, count(*) FROM outbox GROUP BY status")) == {
        "published": rows(orders_db, "SELECT count(*) FROM outbox")[0][0]
    }


def test_every_command_was_handled_exactly_once(saga_run, events_db):
    commands = rows(events_db, "SELECT count(*) FROM protean_events WHERE category LIKE :pattern", pattern="%:command")[0][0]
    handled = succeeded_task_ids((saga_run.state / "worker.log").read_text(), "protean.orders.commands.")
    assert commands > ORDERS * 4
    assert len(handled) == commands
    assert set(handled.values()) == {1}


def test_every_saga_is_complete_in_the_event_store(events_db):
    complete = rows(
        events_db,
        "SELECT count(DISTINCT stream_name) FROM protean_events "
        "WHERE category = 'orders::order_fulfillment' AND data LIKE '%\"is_complete\": true%'",
    )[0][0]
    assert complete == ORDERS
