"""Our engines: a URI SQLAlchemy cannot read names its setting; SQLite serialises writers; pairs looked up in chunks."""

import pytest
import sqlalchemy as sa

from protean_celery.errors import ConfigurationError
from protean_celery.sql import existing_pairs, make_engine, parse_url, safe_url


def test_an_unreadable_uri_names_the_setting_to_fix():
    with pytest.raises(ConfigurationError, match="state_database_uri is not a database URI"):
        parse_url("not a uri", "state_database_uri")


def test_a_shown_url_hides_its_password():
    assert safe_url("postgresql://app:s3cret@db/orders") == "postgresql://app:***@db/orders"


def test_sqlite_engines_run_in_wal_mode_and_begin_immediate_on_request(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/state.db", "state_database_uri")
    statements = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    with engine.connect().execution_options(immediate=True) as conn, conn.begin():
        conn.exec_driver_sql("SELECT 1")
    assert "BEGIN IMMEDIATE" in statements


def test_existing_pairs_finds_exactly_the_rows_across_chunks(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/pairs.db")
    table = sa.Table("pairs", sa.MetaData(), sa.Column("a", sa.String), sa.Column("b", sa.String))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"a": f"k{n}", "b": "h"} for n in range(7)])
    wanted = [(f"k{n}", "h") for n in range(10)] + [("k1", "other")]
    found = existing_pairs(engine, table.c.a, table.c.b, wanted, chunk=3)
    assert found == {(f"k{n}", "h") for n in range(7)}
    assert existing_pairs(engine, table.c.a, table.c.b, []) == set()
