"""Maintenance prunes inbox markers and dead letters past their retention, keeps what is recent, counts each."""

from datetime import UTC, datetime, timedelta

import pytest

from protean_celery.maintenance import maintain
from protean_celery.testing.drain import drain
from tests.support.shop import PlaceOrder


def test_maintenance_reports_counts_and_keeps_recent_rows(shop_app):
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
    shop_app.relay()
    report = maintain(shop_app.runtime)
    assert report == {"inbox_markers": 0, "lanes": 0, "dead_letters": 0, "outbox_published": 0, "outbox_abandoned": 0,
                      "errors": 0}
    with shop_app.domain.domain_context():
        (row,) = shop_app.domain._get_outbox_repo("default")._dao.query.all().items
    assert row.status == "published"


@pytest.fixture
def app(sqlite_shop):
    return sqlite_shop(dead_letter_retention_days=1)


def _markers(app):
    from protean_celery.inbox import inbox_table

    with app.runtime.inbox.engine.connect() as conn:
        return conn.execute(inbox_table.select()).all()


def test_markers_and_dead_letters_past_their_retention_are_pruned(app):
    app.process(PlaceOrder(order_id="o1"))
    assert drain(app).satisfied
    app.runtime.dead_letters.park("protean.shop.Notifier", {"data": {}}, RuntimeError("boom"))
    markers = len(_markers(app))
    assert markers >= 4
    assert maintain(app.runtime)["inbox_markers"] == 0  # recent: kept
    later = datetime.now(UTC) + timedelta(hours=app.settings.inbox_retention_hours + 1, days=1)
    report = maintain(app.runtime, now=later)
    assert (report["inbox_markers"], report["dead_letters"], report["errors"]) == (markers, 1, 0)
    assert _markers(app) == [] and app.runtime.dead_letters.list() == []
