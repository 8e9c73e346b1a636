"""Deadlines on PostgreSQL: two ticks claim disjoint rows (SKIP LOCKED), and a fired deadline's
command commits with the row's delete (the SQL event store in the same database)."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from protean_celery import deadlines, testing
from protean_celery.deadlines import DeadlineStore, fire_due
from protean_celery.deadlines.firing import _claim
from protean_celery.deadlines.table import utc
from tests.support.shop import PlaceOrder, build_domain

pytestmark = pytest.mark.integration


@pytest.fixture
def app(postgres_server, tmp_path):
    url = postgres_server.create_database("deadlines_pg")
    domain = build_domain()  # the shop name: another name re-registers the shared classes for later tests
    domain.config["databases"] = {"default": {"provider": "postgresql", "database_uri": url}}
    domain.config["event_store"] = {"provider": "sqlalchemy", "database_uri": url}
    bed = testing.Testbed(domain, tmp_path, settings={"state_database_uri": url, "nudge": False}, keep_config=True)
    app = bed.setup()
    testing.FakeClock.install(app.domain)
    with app.domain.domain_context():
        yield app
    bed.teardown()


def test_two_ticks_at_once_claim_disjoint_deadlines_without_waiting(app):
    for number in range(5):
        deadlines.schedule(PlaceOrder(order_id=f"o{number}"), after=timedelta(seconds=-number), key=f"k{number}")
    engine, now = DeadlineStore(app.domain).engine, utc(app.domain.clock.now())
    with engine.connect() as first, engine.connect() as second:
        first.begin()
        second.begin()
        taken = {row["key"] for row in _claim(first, now, 3)}
        second.execute(sa.text("SET LOCAL lock_timeout = '5s'"))  # a claim that waited would fail here
        others = {row["key"] for row in _claim(second, now, 5)}
        assert taken == {"k4", "k3", "k2"}  # the oldest first
        assert others == {"k1", "k0"}
        first.rollback()
        second.rollback()
    assert DeadlineStore(app.domain).count() == 5  # rolled back: every row is still there


def test_a_fired_deadline_s_command_is_in_the_event_store_and_its_row_gone(app):
    deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(0), key="k")
    assert fire_due(app.runtime).fired == 1
    assert [m.metadata.headers.type for m in app.domain.event_store.store.read("shop::order:command-o1")] \
        == ["Shop.PlaceOrder.v1"]
    assert DeadlineStore(app.domain).list() == []
