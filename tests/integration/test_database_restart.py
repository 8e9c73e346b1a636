"""A process that is not a worker survives a PostgreSQL crash-restart: its first call after it succeeds.

An API placing orders with ``app.process`` and reading them back keeps pooled
connections. ``pg_ctl restart -m immediate`` kills every one of them; the pools
ping connections that sat idle (our engines: ``sql.IDLE_PING_SECONDS``; Protean's
own ``pool_pre_ping``; :class:`PingingPool` for Message DB), so no caller sees the
dead connection. Both event stores: ours and
Protean's Message DB.
"""

import pytest

from protean_celery import ProteanCelery, storage
from protean_celery.testing.message_db import install_message_db
from protean_celery.testing.servers import PostgresServer
from tests.support.shop import Order, PlaceOrder, build_domain

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    with PostgresServer(crash_safe=True) as started:
        yield started


def _domain(server, store):
    url = server.create_database(f"restart_{store}")
    if store == "message_db":
        events = server.create_database("restart_mdb")
        install_message_db(events)
        event_store = {"provider": "message_db", "database_uri": events}
    else:
        event_store = {"provider": "sqlalchemy", "database_uri": url}
    # The shop's own name: another name would re-register the shared classes under it for later tests.
    domain = build_domain(databases={"default": {"provider": "postgresql", "database_uri": url}},
                          event_store=event_store)
    domain.init(traverse=False)
    return domain


@pytest.fixture(params=["sqlalchemy", "message_db"])
def app(request, server):
    domain = _domain(server, request.param)
    app = ProteanCelery(domain, config={"broker_url": "memory://", "task_always_eager": False})
    storage.setup(domain, app.runtime.state)
    yield app
    domain.close()


def _place_and_read(app, order_id):
    with app.domain.domain_context():
        app.process(PlaceOrder(order_id=order_id))
        commands = app.domain.event_store.store.read(f"{app.domain.normalized_name}::order:command")
        return [m.data["order_id"] for m in commands]


def test_the_first_calls_after_a_crash_restart_succeed(app, server):
    assert _place_and_read(app, "before") == ["before"]
    app.runtime.state.dead_letters.list()  # a pooled connection in the state database too
    restarts = server.restarts

    server.crash_restart()

    with app.domain.domain_context():  # a read first: every pooled connection is stale now
        assert [m.data["order_id"] for m in app.domain.event_store.store.read(
            f"{app.domain.normalized_name}::order:command")] == ["before"]
        assert app.domain.repository_for(Order)._dao.query.all().total == 0  # no handler ran: no worker
    assert app.runtime.state.dead_letters.list() == []
    assert _place_and_read(app, "after") == ["before", "after"]
    assert server.restarts == restarts + 1


def test_the_message_db_pool_reuses_its_connections(server):
    from protean_celery.event_store.message_db import PingingPool

    pool = PingingPool(server.create_database("restart_pool"), max_connections=2)

    def backend() -> int:
        conn = pool.get_connection()
        try:
            with conn, conn.cursor() as cursor:  # as message-db-py uses it: a transaction per call
                cursor.execute("SELECT pg_backend_pid()")
                return int(cursor.fetchone()[0])
        finally:
            pool.release(conn)

    first = backend()
    assert [backend() for _ in range(3)] == [first] * 3  # one connection, not one per call
    server.crash_restart()
    after = backend()  # the stale one was replaced before the caller saw it
    assert after != first and backend() == after
    pool.closeall()
