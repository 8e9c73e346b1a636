"""Our PostgreSQL engines ping a pooled connection that sat idle before handing it out (``sql.py``)."""

import time

import sqlalchemy as sa

from protean_celery.sql import IDLE_PING_SECONDS, make_engine


def _backends(admin, engine_url):
    with admin.connect() as conn:
        return conn.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
        ), {"db": engine_url.database}).scalars().all()


def test_a_pooled_connection_killed_while_idle_is_replaced_before_the_caller_uses_it(postgres_server):
    url = postgres_server.create_database("idle_ping")
    engine = make_engine(url, "test")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:  # one pooled connection, then idle
            first = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with admin.connect() as conn:  # its backend dies while it sits in the pool, as in a restart
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        time.sleep(IDLE_PING_SECONDS + 0.05)  # idle for longer than a restart could be short

        with engine.begin() as conn:  # a write (never repeated by cut_reads): it needs a live connection
            second = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()

        assert second != first
        assert first not in _backends(admin, engine.url)
    finally:
        engine.dispose()
        admin.dispose()
