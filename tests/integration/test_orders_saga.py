"""The orders saga through a real `celery worker -c 2` and a real Redis.

Three storage profiles, each a real run of ``python -m workers.orders.run``:
SQLite files with the SQL event store (the embedded default's storage),
PostgreSQL with the SQL event store, and PostgreSQL with Protean's Message DB.
"""

from collections import Counter
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from tests.integration.orders import Run, rows, run_orders

pytestmark = pytest.mark.integration


@dataclass
class Profile:
    name: str
    orders: int
    run: Run
    orders_db: sa.Engine
    events_db: sa.Engine
    events_table: str  # FROM clause with columns category, stream_name, position, data


def _sqlite(redis_server, tmp_path_factory):
    state = tmp_path_factory.mktemp("sqlite")
    run = run_orders(state, 100, broker=redis_server.url)  # as many as the other profiles: 200 proved no more
    return Profile("sqlite", 100, run, sa.create_engine(f"sqlite:///{state}/orders.db"),
                   sa.create_engine(f"sqlite:///{state}/orders.db"), "protean_events")


def _postgres(broker_url, postgres_server, tmp_path_factory, name="postgres"):
    url = postgres_server.create_database(f"orders_{name}")
    run = run_orders(tmp_path_factory.mktemp(name), 100, broker=broker_url,
                     env={"PROTEAN_ENV": "production", "DATABASE_URL": url})
    engine = sa.create_engine(url)
    table = "(SELECT category, stream_name, position, data::text AS data FROM protean_events) AS e"
    return Profile(name, 100, run, engine, engine, table)


def _message_db(redis_server, postgres_server, tmp_path_factory):
    from protean_celery.testing.message_db import install_message_db

    url = postgres_server.create_database("orders_agg")
    store_url = postgres_server.create_database("orders_mdb")
    install_message_db(store_url)
    run = run_orders(tmp_path_factory.mktemp("mdb"), 100, broker=redis_server.url,
                     env={"PROTEAN_ENV": "messagedb", "DATABASE_URL": url, "MESSAGE_DB_URL": store_url})
    table = ("(SELECT message_store.category(stream_name) AS category, stream_name, position, data::text AS data "
             "FROM message_store.messages) AS m")
    return Profile("message_db", 100, run, sa.create_engine(url), sa.create_engine(store_url), table)


@pytest.fixture(scope="module", params=["sqlite", "postgres", "message_db", "rabbitmq"])
def profile(request, redis_server, tmp_path_factory):
    if request.param == "sqlite":
        result = _sqlite(redis_server, tmp_path_factory)
    elif request.param == "rabbitmq":
        broker = request.getfixturevalue("rabbitmq_server")
        result = _postgres(broker.url, request.getfixturevalue("postgres_server"), tmp_path_factory, "rabbitmq")
    elif request.param == "postgres":
        result = _postgres(redis_server.url, request.getfixturevalue("postgres_server"), tmp_path_factory)
    else:
        result = _message_db(redis_server, request.getfixturevalue("postgres_server"), tmp_path_factory)
    assert result.run.returncode == 0, result.run.output
    return result


def test_every_order_ends_completed_or_compensated(profile):
    statuses = dict(rows(profile.orders_db, 'SELECT status, count(*) FROM "order" GROUP BY status'))
    declined = rows(profile.orders_db, "SELECT count(*) FROM payment WHERE status = 'DECLINED'")[0][0]
    assert sum(statuses.values()) == profile.orders
    assert set(statuses) <= {"COMPLETED", "CANCELLED"}
    assert statuses.get("CANCELLED", 0) == declined > 0
    assert profile.run.figure("sagas completed") + profile.run.figure("sagas compensated") == profile.orders


def test_the_projection_matches_the_aggregates(profile):
    mismatched = rows(
        profile.orders_db,
        'SELECT o.order_id, o.status, s.status FROM "order" o LEFT JOIN order_summary s '
        "ON s.order_id = o.order_id WHERE s.status IS NULL OR s.status != o.status",
    )
    assert mismatched == []


def test_the_side_effect_ran_once_per_shipped_order(profile):
    shipped = rows(profile.orders_db, "SELECT count(*) FROM shipment WHERE status = 'DELIVERED'")[0][0]
    calls = rows(profile.orders_db, "SELECT count(*), min(attempts), max(attempts) FROM courier_call")[0]
    assert tuple(calls) == (shipped, 1, 1)


def test_every_outbox_row_is_published(profile):
    total = rows(profile.orders_db, "SELECT count(*) FROM outbox")[0][0]
    assert total >= profile.orders * 3
    assert dict(rows(profile.orders_db, "SELECT status, count(*) FROM outbox GROUP BY status")) == {"published": total}


def test_every_command_was_handled_exactly_once(profile):
    # A command's inbox key is stream@position; its aggregate's command task records one marker per handling.
    commands = {f"{stream}@{position}" for stream, position in rows(
        profile.events_db, f"SELECT stream_name, position FROM {profile.events_table} WHERE category LIKE :p",
        p="%:command")}
    markers = Counter(key for (key,) in rows(profile.orders_db, "SELECT message_key FROM protean_celery_inbox"))
    assert len(commands) > profile.orders * 4
    assert {key: markers[key] for key in commands} == dict.fromkeys(commands, 1)


def test_every_saga_is_complete_in_the_event_store(profile):
    complete = rows(
        profile.events_db,
        f"SELECT count(DISTINCT stream_name) FROM {profile.events_table} "
        "WHERE category = 'orders::order_fulfillment' AND data LIKE :p",
        p='%"is_complete": true%',
    )[0][0]
    assert complete == profile.orders
