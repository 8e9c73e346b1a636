"""The shop domain with a broker subscriber on Protean's inline broker (in memory, consumer groups and acks)."""

from typing import Any

import pytest
from protean.core.subscriber import BaseSubscriber
from protean.utils import globals as protean_globals

from protean_celery import ProteanCelery
from protean_celery.outbox.cursor import MemoryCursorStore
from protean_celery.testing import Testbed
from tests.support.shop import Order, build_domain

STREAM = "partner_orders"
#: What the subscriber saw: (payload, the message Protean's context held).
SEEN: list[tuple[dict[str, Any], Any]] = []


class PartnerFeed(BaseSubscriber):
    """Saves an order per message; a message with ``fail`` raises."""

    errors: list[str] = []

    def __call__(self, payload: dict[str, Any]) -> None:
        SEEN.append((payload, protean_globals.g.get("message_in_context")))
        if payload.get("fail"):
            raise RuntimeError(f"cannot read {payload['ref']}")
        protean_globals.current_domain.repository_for(Order).add(Order(order_id=payload["ref"]))

    @classmethod
    def handle_error(cls, exc: Exception, message: dict[str, Any]) -> None:
        cls.errors.append(f"{exc}")


def feed_domain(**config: Any) -> Any:
    domain = build_domain(**config)
    domain.register(PartnerFeed, stream=STREAM)
    return domain


@pytest.fixture
def feed_app():
    """On memory adapters: no inbox (the memory provider has no SQL)."""
    domain = feed_domain()
    domain.init(traverse=False)
    SEEN.clear()
    PartnerFeed.errors.clear()
    app = ProteanCelery(domain, config={"broker_url": "memory://"}, cursors=MemoryCursorStore(), nudge=False)
    _purge(app)
    yield app
    _purge(app)
    with domain.domain_context():
        domain.brokers["default"]._data_reset()
        for name in domain.providers:
            domain.providers[name]._data_reset()


@pytest.fixture
def sqlite_feed_app(tmp_path):
    """On SQLite files: the inbox and the dead letters are real tables."""
    SEEN.clear()
    PartnerFeed.errors.clear()
    bed = Testbed(feed_domain(), tmp_path, settings={"nudge": False})
    app = bed.setup()
    _purge(app)
    yield app
    _purge(app)
    bed.teardown()


def _purge(app: Any) -> None:
    """Empty the subscriber queues: Kombu's memory transport keeps them for the whole test process."""
    with app.connection_for_write() as conn:
        for queue in app.subscribers.queues:
            bound = queue.bind(conn.default_channel)
            bound.declare()
            bound.purge()


def publish(app: Any, *payloads: Any) -> None:
    with app.domain.domain_context():
        for payload in payloads:
            app.domain.brokers["default"].publish(STREAM, payload)


def queued(app: Any, route: Any) -> list[tuple[str, Any]]:
    """(task id, envelope) of every task message in ``route``'s queue, taken off it."""
    found = []
    with app.connection_for_write() as conn:
        queue = route.queue.bind(conn.default_channel)
        queue.declare()
        while (message := queue.get(no_ack=True)) is not None:
            found.append((message.headers["id"], message.decode()[0][0]))
    return found
