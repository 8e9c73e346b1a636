"""The state database: one engine for cursors, dead letters and ledger; where each table of ours lives."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from protean_celery import testing
from protean_celery.errors import ConfigurationError
from protean_celery.outbox.cursor import MemoryCursorStore, SQLCursorStore
from protean_celery.redelivery import Watch
from protean_celery.settings import load_settings
from protean_celery.state import DOMAIN_TABLES, STATE_TABLES, StateDatabase, state_database
from tests.support.shop import build_domain


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_the_state_database_keeps_cursors_dead_letters_and_ledger_on_one_engine(tmp_path):
    state = StateDatabase.open(f"sqlite:///{tmp_path}/state.db")
    state.setup()
    assert _tables(state.engine) == {table.name for table in STATE_TABLES}
    assert state.cursors.engine is state.dead_letters.engine is state.ledger.engine is state.engine

    state.cursors.advance("commands:orders", lambda position: position + 3)
    state.dead_letters.park("task.a", {"data": {}}, RuntimeError("boom"))
    state.ledger.watch([Watch("task.a", "m1", "orders", {}, datetime.now(UTC))])
    state.truncate()
    assert state.cursors.position("commands:orders") == -1
    assert state.dead_letters.list() == [] and state.ledger.count() == 0

    state.drop()
    assert _tables(state.engine) == set()


def test_in_process_cursors_bring_a_private_memory_database_that_db_commands_leave_alone():
    cursors = MemoryCursorStore()
    state = state_database(build_domain(), load_settings({}), cursors)
    assert state.cursors is cursors and not state.durable
    state.dead_letters.park("task.a", {"data": {}}, RuntimeError("boom"))  # usable at once, no setup
    state.truncate()
    assert len(state.dead_letters.list()) == 1


def test_given_sql_cursors_bring_their_engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/mine.db")
    state = state_database(build_domain(), load_settings({}), SQLCursorStore(engine))
    assert state.durable and state.engine is engine and state.dead_letters.engine is engine


def test_a_memory_default_database_without_a_state_uri_is_refused():
    with pytest.raises(ConfigurationError, match="state_database_uri"):
        state_database(build_domain(), load_settings({}))


def test_storage_sets_up_the_inbox_in_the_default_database_and_the_rest_in_the_state_database(tmp_path):
    bed = testing.Testbed(build_domain(), tmp_path)
    app = bed.setup()  # storage.setup(domain, app.runtime.state)
    inbox = next(table.name for table in DOMAIN_TABLES if table.name.endswith("inbox"))
    assert inbox in _tables(app.runtime.inbox.engine)
    assert {table.name for table in STATE_TABLES} <= _tables(app.runtime.state.engine)
    assert inbox not in _tables(app.runtime.state.engine)
    bed.teardown()
