"""Unit fixtures: the shop domain on Kombu's memory transport, with memory adapters or SQLite files."""

import pytest

from protean_celery import ProteanCelery
from protean_celery.outbox.cursor import MemoryCursorStore
from protean_celery.testing import Testbed
from tests.support.shop import SENT, build_domain


@pytest.fixture
def memory_shop():
    """Builds the shop app on memory adapters and the memory broker with domain config; reset after."""
    domains = []

    def build(**config):
        domain = build_domain(**config)
        domain.init(traverse=False)
        domains.append(domain)
        SENT.clear()
        app = ProteanCelery(domain, config={"broker_url": "memory://"}, cursors=MemoryCursorStore(), nudge=False)
        with app.connection_for_write() as conn:
            for queue in app.topology.queues:
                queue.bind(conn.default_channel).declare()
                queue.bind(conn.default_channel).purge()
        return app

    yield build
    for domain in domains:
        with domain.domain_context():
            domain.event_store.store._data_reset()
            for name in domain.providers:
                domain.providers[name]._data_reset()


@pytest.fixture
def shop_app(memory_shop):
    return memory_shop()


@pytest.fixture
def sqlite_app(sqlite_shop):
    """The shop domain on SQLite files (``Testbed``) and the memory broker, no nudge: relayed by ``app.relay()``."""
    app = sqlite_shop(nudge=False)
    yield app
    app.conf.broker_url = "memory://"  # a test may point it at a closed port


@pytest.fixture
def sqlite_shop(tmp_path):
    """Builds the shop app on SQLite files in ``tmp_path`` (a ``Testbed``), with settings overrides; torn down after."""
    beds = []

    def build(**settings):
        bed = Testbed(build_domain(), tmp_path, settings=settings)
        beds.append(bed)
        return bed.setup()

    yield build
    for bed in beds:
        bed.teardown()
