"""The deadlines table: created with ``protean db``, listed soonest first, cancelled by key."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from protean_celery import deadlines, storage
from protean_celery.deadlines import DeadlineStore
from protean_celery.errors import DeadlineNotFound
from tests.support.shop import PlaceOrder


def test_the_table_lives_in_the_default_database_with_an_index_on_due_time(shop):
    engine = DeadlineStore(shop.domain).engine
    indexes = sa.inspect(engine).get_indexes("protean_celery_deadlines")
    assert [index["column_names"] for index in indexes if not index["unique"]] == [["status", "due_at"]]


def test_listing_is_soonest_first_and_filters_by_status(shop):
    deadlines.schedule(PlaceOrder(order_id="o2"), after=timedelta(minutes=2), key="two")
    deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=1), key="one")
    store = DeadlineStore(shop.domain)
    assert [d.key for d in store.list()] == ["one", "two"]
    assert [d.key for d in store.list(limit=1)] == ["one"]
    assert store.list(status="failed") == []
    assert store.count() == 2


def test_cancel_returns_the_deadline_and_an_unknown_key_is_a_typed_error(shop):
    deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=1), key="k")
    store = DeadlineStore(shop.domain)
    assert store.cancel("k").data == {"order_id": "o1"}
    with pytest.raises(DeadlineNotFound, match="'k'.*protean deadlines list") as caught:
        store.cancel("k")
    assert isinstance(caught.value, KeyError) and caught.value.key == "k"


def test_truncate_and_drop_go_with_the_other_tables(shop):
    deadlines.schedule(PlaceOrder(order_id="o1"), after=timedelta(minutes=1))
    storage.truncate(shop.domain, shop.runtime.state)
    assert DeadlineStore(shop.domain).list() == []
    storage.drop(shop.domain, shop.runtime.state)
    assert "protean_celery_deadlines" not in sa.inspect(DeadlineStore(shop.domain).engine).get_table_names()
    storage.setup(shop.domain, shop.runtime.state)
    assert DeadlineStore(shop.domain).count() == 0


def test_on_the_memory_provider_the_table_is_private_to_this_process(shop_app):
    store = DeadlineStore(shop_app.domain)
    assert not store.shared
    assert store.list() == [] and store.count() == 0
    with pytest.raises(DeadlineNotFound):
        store.cancel("k")
