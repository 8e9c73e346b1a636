"""Storage: setup, truncate and drop cover Protean's tables and ours."""

import sqlalchemy as sa

from protean_celery import storage
from protean_celery.testing import Testbed
from protean_celery.testing.drain import drain
from tests.support.shop import PlaceOrder, build_domain


def _tables(path):
    return set(sa.inspect(sa.create_engine(f"sqlite:///{path}")).get_table_names())


def test_setup_truncate_and_drop_cover_every_table(tmp_path):
    bed = Testbed(build_domain(), tmp_path)
    app = bed.setup()
    try:
        assert {"protean_celery_inbox", "order"} <= _tables(tmp_path / "domain.db")
        assert "protean_celery_dead_letters" in _tables(tmp_path / "relay.db")
        app.process(PlaceOrder(order_id="o1"))
        drain(app)
        app.runtime.dead_letters.park("task.a", {"data": {}}, RuntimeError("boom"))
        storage.truncate(app.domain, app.runtime.state)
        assert app.runtime.dead_letters.list() == [] and app.runtime.cursors.position("relay") == -1
        with app.domain.domain_context():
            assert app.domain.event_store.store.read("shop::order:command") == []
        storage.drop(app.domain, app.runtime.state)
        assert "protean_celery_inbox" not in _tables(tmp_path / "domain.db")
        assert "protean_celery_dead_letters" not in _tables(tmp_path / "relay.db")
    finally:
        bed.teardown()
