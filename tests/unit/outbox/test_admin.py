"""Outbox rows on memory adapters: max_attempts honoured, stuck rows counted, requeue, maintenance."""

import pytest
from protean.core.unit_of_work import UnitOfWork

from protean_celery.errors import OutboxError, OutboxRowNotFound, RelayError
from protean_celery.outbox import admin
from tests.support.shop import PlaceOrder


@pytest.fixture
def row_id(shop_app):
    with shop_app.domain.domain_context():
        shop_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
        (row,) = shop_app.domain._get_outbox_repo("default")._dao.query.all().items
    return str(row.id)


@pytest.fixture
def broken(shop_app, monkeypatch):
    def publish(*args, **kwargs):
        raise RelayError("broker refused the message")

    monkeypatch.setattr(shop_app.runtime.relay, "publish", publish)
    retry = shop_app.domain.config["outbox"]["retry"]
    monkeypatch.setitem(retry, "max_attempts", 5)
    monkeypatch.setitem(retry, "base_delay_seconds", 0)


def _row(app, row_id):
    with app.domain.domain_context():
        return app.domain._get_outbox_repo("default").get(row_id)


def test_max_attempts_above_the_column_means_that_many_attempts_then_abandoned(shop_app, row_id, broken):
    failures = [shop_app.relay().failed for _ in range(7)]
    assert failures == [1, 1, 1, 1, 1, 0, 0]
    row = _row(shop_app, row_id)
    assert (row.status, row.retry_count, row.max_retries) == ("abandoned", 5, 5)
    assert row.last_error["message"] == "broker refused the message"
    assert admin.counts(shop_app.domain)["default"]["abandoned"] == 1
    assert shop_app.runtime.relay.pending() == 0


def test_a_row_stuck_in_failed_is_counted_listed_and_requeued(shop_app, row_id):
    with shop_app.domain.domain_context():
        repo = shop_app.domain._get_outbox_repo("default")
        with UnitOfWork():
            row = repo.get(row_id)
            for _ in range(3):  # Protean's OutboxProcessor with max_attempts = 5
                row.mark_failed(RuntimeError("down"), base_delay_seconds=0, max_retries=5)
            repo.add(row)
    counts = admin.counts(shop_app.domain)["default"]
    assert (counts["failed"], counts["stuck"]) == (0, 1)
    assert [r.id for r in admin.list_rows(shop_app.domain, admin.STUCK)] == [row_id]
    assert admin.list_rows(shop_app.domain, "failed") == []
    assert shop_app.relay().events == 0  # never claimed
    assert shop_app.runtime.relay.pending() == 0  # and not waited for by drains
    assert admin.requeue(shop_app.domain, [row_id]) == [row_id]
    row = _row(shop_app, row_id)
    assert (row.status, row.retry_count, row.max_retries) == ("pending", 0, 3)
    assert shop_app.relay().events == 1


def test_requeue_refuses_unknown_ids_and_rows_that_did_not_fail(shop_app, row_id):
    with pytest.raises(OutboxRowNotFound, match="protean outbox list"):
        admin.requeue(shop_app.domain, [row_id, "no-such-row"])
    with pytest.raises(OutboxError, match="is pending"):
        admin.requeue(shop_app.domain, [row_id])
    with pytest.raises(OutboxError, match="Unknown outbox status"):
        admin.list_rows(shop_app.domain, "lost")


def test_requeue_all_abandoned_resets_them_for_the_next_tick(shop_app, row_id, broken, monkeypatch):
    for _ in range(5):
        shop_app.relay()
    assert admin.requeue_all(shop_app.domain, "abandoned") == [row_id]
    monkeypatch.undo()
    assert shop_app.relay().events == 1
    assert _row(shop_app, row_id).status == "published"
