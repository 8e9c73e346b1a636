"""Relay cursors: a position per name, -1 before the first advance, moved only by the step given."""

import pytest

from protean_celery.outbox.cursor import MemoryCursorStore, SQLCursorStore
from protean_celery.sql import make_engine


@pytest.fixture(params=["memory", "sqlite"])
def cursors(request, tmp_path):
    if request.param == "memory":
        return MemoryCursorStore()
    store = SQLCursorStore(make_engine(f"sqlite:///{tmp_path}/state.db", "state_database_uri"))
    store.setup()
    return store


def test_a_new_cursor_is_before_the_first_position(cursors):
    assert cursors.position("relay:commands:shop::order:command") == -1


def test_advance_applies_the_step_to_the_current_position(cursors):
    assert cursors.advance("a", lambda current: current + 5) == 4
    assert cursors.advance("a", lambda current: max(current, 2)) == 4  # never backwards when asked so
    assert (cursors.position("a"), cursors.position("b")) == (4, -1)


def test_sql_cursors_survive_a_new_store_and_are_forgotten_by_truncate(tmp_path):
    uri = f"sqlite:///{tmp_path}/state.db"
    first = SQLCursorStore(make_engine(uri, "state_database_uri"))
    first.setup()
    first.advance("a", lambda current: 7)
    second = SQLCursorStore(make_engine(uri, "state_database_uri"))
    assert second.position("a") == 7
    second.truncate()
    assert first.position("a") == -1
