"""The age of a waiting task message: its Protean message's ``headers.time``."""

from datetime import UTC, datetime

from protean_celery.broker.age import written_at


def test_written_at_reads_iso_times_and_takes_naive_ones_as_utc():
    aware = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert written_at({"metadata": {"headers": {"time": aware.isoformat()}}}) == aware
    assert written_at({"metadata": {"headers": {"time": "2026-01-02T03:04:05"}}}) == aware
    assert written_at({"metadata": {"headers": {"time": "2026-01-02T05:04:05+02:00"}}}) == aware


def test_written_at_of_anything_else_is_none():
    for payload in (None, {"n": 1}, {"metadata": {"headers": {}}}, {"metadata": {"headers": {"time": "soon"}}}):
        assert written_at(payload) is None
