"""The lanes' table: a lane moves only from its predecessor, settles over a gap, and is pruned once idle."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from protean_celery.turns import metadata, settle, take, turns_table


def _session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/turns.db")
    metadata.create_all(engine, tables=[turns_table])
    return Session(engine)


def test_a_lane_moves_one_position_at_a_time_and_says_where_it_is_otherwise(tmp_path):
    with _session(tmp_path) as session:
        assert take(session, "h|s-1", 1) == -1  # no row: a placeholder, gone with this transaction
        session.rollback()
        assert take(session, "h|s-1", 0) == 0
        assert take(session, "h|s-1", 0) is None  # a duplicate of 0
        assert take(session, "h|s-1", 2) == 0  # ahead of 1: the lane is at 0
        assert take(session, "h|s-1", 1) == 1 and take(session, "h|s-1", 2) == 2
        assert take(session, "h|s-1", 1) == 2  # behind the lane
        assert take(session, "h|s-2", 0) == 0  # another stream, its own lane


def test_settle_moves_over_a_gap_only_from_where_the_lane_was(tmp_path):
    with _session(tmp_path) as session:
        assert take(session, "h|s-1", 4) == -1
        assert settle(session, "h|s-1", -1, 4)  # nothing before 4 is this handler's
        assert not settle(session, "h|s-1", 3, 6)  # it is not at 3
        assert settle(session, "h|s-1", 4, 6) and take(session, "h|s-1", 7) == 7


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
