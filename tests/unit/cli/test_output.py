"""--json data: ISO times and plain containers."""

from datetime import UTC, datetime

from protean_celery.cli.output import jsonable


def test_json_data_has_iso_times_and_plain_containers():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jsonable({"at": when, "ids": ("a", "b"), 1: None}) == {
        "at": "2026-01-02T03:04:05+00:00", "ids": ["a", "b"], "1": None
    }
