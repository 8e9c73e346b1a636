"""The lanes' table: a lane moves only from its predecessor, settles over a gap, and is pruned once idle."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from protean_celery.turns import last_position, metadata, settle, take, turns_table


def _session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/turns.db")
    metadata.create_all(engine, tables=[turns_table])
    return Session(engine)


def test_a_lane_moves_one_position_at_a_time(tmp_path):
    with _session(tmp_path) as session:
        assert not take(session, "h|s-1", 1)  # no row: only position 0 starts a lane (1 left a placeholder, -1)
        assert last_position(session, "h|s-1") == -1
        session.rollback()
        assert take(session, "h|s-1", 0)
        assert not take(session, "h|s-1", 0)  # a duplicate of 0
        assert not take(session, "h|s-1", 2)  # ahead of 1
        assert take(session, "h|s-1", 1) and take(session, "h|s-1", 2)
        assert not take(session, "h|s-1", 2)
        assert last_position(session, "h|s-1") == 2 and last_position(session, "h|s-2") is None


def test_settle_moves_over_a_gap_only_from_where_the_lane_was(tmp_path):
    with _session(tmp_path) as session:
        assert settle(session, "h|s-1", None, 4)  # a lane's first message at position 4
        assert not settle(session, "h|s-1", None, 5)  # the row exists now
        assert not settle(session, "h|s-1", 3, 6)  # it is not at 3
        assert settle(session, "h|s-1", 4, 6) and last_position(session, "h|s-1") == 6


def test_idle_lanes_are_pruned(sqlite_shop):
    from protean_celery.turns import Turns

    app = sqlite_shop()
    turns = Turns(app.domain)
    with turns.engine.begin() as conn:
        conn.execute(turns_table.insert(), [
            {"lane": "old", "position": 3, "updated_at": datetime.now(UTC) - timedelta(days=30)},
            {"lane": "new", "position": 1, "updated_at": datetime.now(UTC)},
        ])
    assert turns.prune(datetime.now(UTC) - timedelta(days=7)) == 1
    assert (turns.position("old"), turns.position("new")) == (None, 1)
