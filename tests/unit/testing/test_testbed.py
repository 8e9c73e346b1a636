"""``Testbed``: an app on SQLite files in a folder and the memory transport; ``reset`` leaves nothing behind."""

from protean_celery.testing import Testbed
from protean_celery.testing.drain import drain, queue_depths
from tests.support.shop import Order, PlaceOrder, build_domain


def test_the_app_runs_on_sqlite_files_in_the_state_dir(tmp_path):
    bed = Testbed(build_domain(), tmp_path / "state")
    app = bed.setup()
    try:
        assert str(app.conf.broker_url).startswith("memory")
        assert (tmp_path / "state" / "domain.db").exists() and (tmp_path / "state" / "relay.db").exists()
        app.process(PlaceOrder(order_id="o1"))
        assert drain(app).satisfied
        with app.domain.domain_context():
            assert app.domain.repository_for(Order).get("o1").status == "shipped"
    finally:
        bed.teardown()


def test_reset_empties_tables_store_cursors_and_queues(tmp_path):
    bed = Testbed(build_domain(), tmp_path)
    app = bed.setup()
    try:
        app.process(PlaceOrder(order_id="o1"))
        assert queue_depths(app)["protean.shop.commands.Order"] == 1
        app.runtime.dead_letters.park("task.a", {"data": {}}, RuntimeError("boom"))
        bed.reset()
        assert set(queue_depths(app).values()) == {0}
        assert app.runtime.dead_letters.list() == []
        with app.domain.domain_context():
            assert app.domain.event_store.store.read("shop::order:command") == []
            assert app.domain.repository_for(Order)._dao.query.all().items == []
    finally:
        bed.teardown()
