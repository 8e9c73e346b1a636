"""``protean db``: create, empty and drop every table on SQLite files; drop asks first."""

from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.support.shop import PlaceOrder


@pytest.fixture
def app(sqlite_shop):
    return sqlite_shop()


def _db(app, *args, input=None):
    from protean_celery.cli import protean

    return CliRunner().invoke(protean, ["db", *args], obj=SimpleNamespace(app=app), input=input)


def _tables(app, tmp_path):
    return set(sa.inspect(sa.create_engine(f"sqlite:///{tmp_path}/domain.db")).get_table_names())


def test_setup_is_idempotent_and_drop_asks_first(app, tmp_path):
    assert _db(app, "setup").exit_code == 0  # the tables exist already
    assert {"protean_celery_inbox", "order", "outbox"} <= _tables(app, tmp_path)
    assert _db(app, "drop", input="n\n").exit_code == 1  # refused: nothing dropped
    assert "protean_celery_inbox" in _tables(app, tmp_path)
    assert _db(app, "drop", "--yes").exit_code == 0
    assert _tables(app, tmp_path) == set()


def test_truncate_deletes_every_row_and_the_event_store(app):
    app.process(PlaceOrder(order_id="o1"))
    app.runtime.dead_letters.park("task.a", {"data": {}}, RuntimeError("boom"))
    assert _db(app, "truncate", "--yes").exit_code == 0
    assert app.runtime.dead_letters.list() == []
    with app.domain.domain_context():
        assert app.domain.event_store.store.read("shop::order:command") == []
