"""How long the oldest outbox work has waited: nothing pending, a pending row, a published one."""

from datetime import UTC, datetime, timedelta

from protean_celery.waiting import oldest_due, oldest_unpublished
from tests.support.shop import PlaceOrder


def test_no_row_waits_on_an_idle_outbox(sqlite_app):
    assert oldest_unpublished(sqlite_app.domain) == {"default": None}
    assert oldest_due(sqlite_app.domain) == {"default": None}


def test_a_pending_row_waits_from_when_it_was_written_until_it_is_published(sqlite_app):
    with sqlite_app.domain.domain_context():
        sqlite_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)  # no nudge: the row stays pending
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 29 <= oldest_unpublished(sqlite_app.domain, now=later)["default"] <= 31
    assert 29 <= oldest_due(sqlite_app.domain, now=later)["default"] <= 31
    sqlite_app.relay()
    assert oldest_unpublished(sqlite_app.domain, now=later) == {"default": None}


def test_another_domains_rows_in_the_same_table_do_not_wait_on_this_relay(sqlite_app, tmp_path):
    from protean_celery import testing
    from tests.support.tenants import build_tenant, open_ticket

    north = testing.Testbed(build_tenant("north"), tmp_path, settings={"nudge": False})  # the shop's database
    north.setup()
    try:
        open_ticket(north.domain, "n1")
        assert oldest_unpublished(north.domain)["default"] is not None
        assert oldest_unpublished(sqlite_app.domain) == {"default": None}
        assert oldest_due(sqlite_app.domain) == {"default": None}
    finally:
        north.teardown()
