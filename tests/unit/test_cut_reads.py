"""Cut reads: what counts as a write, which errors may be repeated, and a repeat runs exactly once.

The cut itself (a backend terminated mid-read, PostgreSQL crash-restarted) is in
tests/integration/test_cut_reads.py.
"""

from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from protean_celery import cut_reads
from protean_celery.cut_reads import read_was_cut, retry_cut_read, watch_reads

TABLE = sa.Table("t", sa.MetaData(), sa.Column("v", sa.String))


def _cut(marked=True):
    error = DBAPIError("SELECT v FROM t", {}, Exception("server closed the connection unexpectedly"))
    if marked:
        setattr(error, cut_reads._CUT_READ, True)
    return error


@pytest.fixture
def tracked(tmp_path):
    """A SQLite engine with the write tracking listeners (watch_reads itself leaves SQLite alone)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/t.db")
    TABLE.metadata.create_all(engine)
    sa.event.listen(engine, "begin", cut_reads._fresh_transaction)
    sa.event.listen(engine, "before_cursor_execute", cut_reads._note_statement)
    return engine


def test_only_a_plain_select_built_with_sqlalchemy_leaves_a_transaction_read_only(tracked):
    reads = [sa.select(TABLE.c.v), sa.select(sa.func.count()).select_from(TABLE)]
    # A text statement may call anything (our event store writes through ``SELECT fn(...)``).
    writes = [TABLE.insert().values(v="x"), TABLE.update().values(v="y"), sa.text("SELECT v FROM t")]
    for statement in reads:
        with tracked.begin() as conn:
            conn.execute(statement)
            assert conn.info[cut_reads._WROTE] is False, statement
    for statement in writes:
        with tracked.begin() as conn:
            conn.execute(statement)
            assert conn.info[cut_reads._WROTE] is True, statement
    with tracked.begin() as conn:  # a new transaction starts clean
        conn.execute(sa.select(TABLE.c.v))
        assert conn.info[cut_reads._WROTE] is False


def test_a_locking_select_counts_as_a_write():
    compiled = sa.select(TABLE.c.v).with_for_update().compile(dialect=postgresql.dialect())
    assert not cut_reads._plain_read(SimpleNamespace(compiled=compiled), str(compiled))
    plain = sa.select(TABLE.c.v).compile(dialect=postgresql.dialect())
    assert cut_reads._plain_read(SimpleNamespace(compiled=plain), str(plain))


def test_only_a_marked_driver_error_is_a_cut_read():
    assert read_was_cut(_cut())
    assert not read_was_cut(_cut(marked=False))
    assert not read_was_cut(RuntimeError("no"))


def test_a_cut_read_runs_once_more_and_returns_its_result(tracked):
    calls = []

    def read():
        calls.append(1)
        if len(calls) == 1:
            raise _cut()
        return ["row"]

    assert retry_cut_read(tracked, read) == ["row"]
    assert len(calls) == 2


def test_a_repeat_that_is_cut_again_raises(tracked):
    calls = []

    def read():
        calls.append(1)
        raise _cut()

    with pytest.raises(DBAPIError):
        retry_cut_read(tracked, read)
    assert len(calls) == 2


def test_any_other_error_is_raised_at_once(tracked):
    calls = []

    def read():
        calls.append(1)
        raise _cut(marked=False)

    with pytest.raises(DBAPIError):
        retry_cut_read(tracked, read)
    assert len(calls) == 1


def test_server_engines_are_watched_once_and_sqlite_engines_not_at_all(tmp_path):
    server = sa.create_engine("postgresql://app@127.0.0.1:1/none")  # never connects
    watch_reads(server)
    watch_reads(server)
    assert sa.event.contains(server, "handle_error", cut_reads._mark_cut_read)
    assert len(server.dispatch.before_cursor_execute) == 1
    local = sa.create_engine(f"sqlite:///{tmp_path}/x.db")
    watch_reads(local)
    assert not sa.event.contains(local, "handle_error", cut_reads._mark_cut_read)
