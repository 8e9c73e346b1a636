"""Storage: SQLite folders made before init; setup, truncate and drop cover Protean's tables and ours."""

import sqlalchemy as sa

from protean_celery import storage
from protean_celery.testing import Testbed
from protean_celery.testing.drain import drain
from tests.support.shop import PlaceOrder, build_domain


def test_every_sql_uri_of_a_config_is_named_once():
    config = {
        "databases": {
            "default": {"provider": "sqlite", "database_uri": "sqlite:///a.db"},
            "memory": {"provider": "memory"},
        },
        "event_store": {"provider": "sqlalchemy", "database_uri": "sqlite:///a.db"},
        "custom": {"celery": {"state_database_uri": "sqlite:///state.db"}},
    }
    assert storage.database_uris(config) == ["sqlite:///a.db", "sqlite:///state.db"]


def test_sqlite_folders_are_created_before_init(tmp_path):
    uri = f"sqlite:///{tmp_path}/deep/er/domain.db"
    config = {"databases": {"default": {"provider": "sqlite", "database_uri": uri}}}
    assert storage.prepare_databases(config) == []  # SQLite files appear on first connect
    assert (tmp_path / "deep" / "er").is_dir()


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
        storage.truncate(app.domain, app.runtime.cursors)
        assert app.runtime.dead_letters.list() == [] and app.runtime.cursors.position("relay") == -1
        with app.domain.domain_context():
            assert app.domain.event_store.store.read("shop::order:command") == []
        storage.drop(app.domain, app.runtime.cursors)
        assert "protean_celery_inbox" not in _tables(tmp_path / "domain.db")
        assert "protean_celery_dead_letters" not in _tables(tmp_path / "relay.db")
    finally:
        bed.teardown()
