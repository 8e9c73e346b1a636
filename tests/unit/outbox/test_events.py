"""Protean's default delivery, outbox off: events relayed from the event store past per-category cursors."""

import pytest
from protean import handle
from protean.core.event_handler import BaseEventHandler
from protean.core.projection import BaseProjection
from protean.core.projector import BaseProjector
from protean.fields import Identifier, String
from protean.utils.globals import current_domain

from protean_celery.outbox.events import event_cursor_name
from protean_celery.testing import Testbed as Bed
from protean_celery.testing.drain import drain, queue_depths
from tests.support.shop import SENT, Order, OrderPlaced, OrderShipped, PlaceOrder, ShipOrder, build_domain


class OrderView(BaseProjection):
    order_id = Identifier(identifier=True)
    status = String()


class OrderViews(BaseProjector):
    @handle(OrderPlaced)
    def placed(self, event: OrderPlaced) -> None:
        current_domain.repository_for(OrderView).add(OrderView(order_id=event.order_id, status="placed"))

    @handle(OrderShipped)
    def shipped(self, event: OrderShipped) -> None:
        repo = current_domain.repository_for(OrderView)
        view = repo.get(event.order_id)
        view.status = "shipped"
        repo.add(view)


class Audit(BaseEventHandler):
    """Subscribes to every stream, as Protean's ``$all`` handlers do."""

    @handle("$any")
    def any_event(self, event: object) -> None:
        SENT.append(f"audit:{type(event).__name__}")


def outbox_off_domain():
    """The shop domain in Protean's default delivery: outbox off, event store subscriptions, async events."""
    domain = build_domain()
    domain.config["enable_outbox"] = False
    domain.config["event_processing"] = "async"
    domain.config["server"]["default_subscription_type"] = "event_store"
    domain.register(OrderView)
    domain.register(OrderViews, projector_for=OrderView, aggregates=[Order])
    return domain


@pytest.fixture
def outbox_off(tmp_path):
    beds = []

    def build(domain=None, **settings):
        bed = Bed(domain or outbox_off_domain(), tmp_path, settings={"nudge": False, **settings})
        beds.append(bed)
        return bed.setup()

    SENT.clear()
    yield build
    for bed in beds:
        bed.teardown()


def _view(app, order_id):
    with app.domain.domain_context():
        return app.domain.repository_for(OrderView).get(order_id).status


def test_every_handler_kind_runs_once_from_the_event_store(outbox_off):
    app = outbox_off()
    assert app.runtime.relay.event_categories() == ("shop::order",)
    app.process(PlaceOrder(order_id="o1"))
    report = drain(app)
    # PlaceOrder -> OrderPlaced -> Fulfilment (ShipOrder) and OrderViews -> OrderShipped -> Notifier, OrderViews
    assert report.satisfied and report.failures == []
    assert SENT == ["o1"]
    assert _view(app, "o1") == "shipped"
    assert report.relayed == 4  # 2 commands, 2 events
    assert app.runtime.relay.pending() == 0
    assert drain(app).tasks == 0  # nothing relayed twice


def test_pending_counts_the_events_waiting_in_the_event_store(outbox_off):
    app = outbox_off()
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)  # OrderPlaced is appended, not relayed
        app.domain.process(PlaceOrder(order_id="o2"), asynchronous=False)
    app.runtime.relay.run(commands=True, stored_events=False)  # the command cursor passes the synchronous commands
    assert app.runtime.relay.pending() == 2  # the two OrderPlaced
    report = app.relay()
    assert report.events == 2
    assert app.runtime.relay.pending() == 0
    # OrderPlaced goes to the process manager and the projector, not to Notifier.
    depths = queue_depths(app)
    assert (depths["protean.shop.Fulfilment"], depths["protean.shop.OrderViews"], depths["protean.shop.Notifier"]) == (
        2, 2, 0
    )


def test_the_cursor_is_durable_and_per_category(outbox_off):
    app = outbox_off()
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
    app.relay()
    cursor = app.runtime.cursors.position(event_cursor_name("shop::order"))
    assert cursor >= 0
    again = outbox_off()  # a second app on the same state database: a restarted worker
    assert again.runtime.cursors.position(event_cursor_name("shop::order")) == cursor
    assert again.relay().events == 0


def test_events_handled_synchronously_are_not_relayed(outbox_off):
    domain = outbox_off_domain()
    domain.config["event_processing"] = "sync"
    app = outbox_off(domain)
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)  # the UoW ran the handlers already
    assert app.relay().events == 0
    assert queue_depths(app)["protean.shop.OrderViews"] == 0


def test_an_all_streams_handler_reads_every_aggregate_category(outbox_off):
    domain = outbox_off_domain()
    domain.register(Audit, stream_category="$all")
    app = outbox_off(domain)
    assert app.runtime.relay.event_categories() == ("shop::order",)
    app.process(PlaceOrder(order_id="o1"))
    drain(app)
    # Every event once (commands reach a $all handler too, as with the outbox on).
    assert [SENT.count("audit:OrderPlaced"), SENT.count("audit:OrderShipped")] == [1, 1]


def test_with_the_outbox_on_the_event_store_relay_reads_nothing(sqlite_app):
    assert sqlite_app.runtime.relay.event_categories() == ()
    with sqlite_app.domain.domain_context():
        sqlite_app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
    report = sqlite_app.relay()
    assert report.events == 1  # the outbox row only, not its copy in the event store
    assert queue_depths(sqlite_app)["protean.shop.Fulfilment"] == 1


def test_the_fast_path_relays_events_a_handler_committed(outbox_off):
    app = outbox_off(nudge=True)
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
    app.runtime.commits.flush()
    # The commit's OrderPlaced left at once, without a relay run.
    assert queue_depths(app)["protean.shop.OrderViews"] == 1
    assert app.runtime.relay.pending() == 0


def test_a_command_no_handler_takes_is_refused_by_app_process_and_dead_lettered_by_the_relay(outbox_off):
    from protean.core.command import BaseCommand

    from protean_celery.errors import UnknownHandlerError

    class CancelOrder(BaseCommand):
        order_id = Identifier(identifier=True)

    domain = outbox_off_domain()
    domain.register(CancelOrder, part_of=Order)
    app = outbox_off(domain)
    with pytest.raises(UnknownHandlerError, match="No command handler of this app takes Shop.CancelOrder.v1"):
        app.process(CancelOrder(order_id="o0"))  # refused before anything is stored
    with app.domain.domain_context():
        app.domain.process(CancelOrder(order_id="o1"))  # Protean's own path stores it
    with pytest.warns(RuntimeWarning, match="1 command\\(s\\) that no handler of this app takes; they were dead"):
        report = drain(app)
    assert report.unrouted == 1
    [entry] = app.runtime.dead_letters.list()
    assert entry.message_type == "Shop.CancelOrder.v1" and entry.payload["data"]["order_id"] == "o1"
    assert entry.error.startswith("UnknownHandlerError: No command handler of this app takes Shop.CancelOrder.v1")
    assert drain(app, raise_errors=False).unrouted == 0  # the cursor moved past it: parked once


def test_shipping_through_the_drain_updates_the_projection(outbox_off):
    app = outbox_off()
    app.process(PlaceOrder(order_id="o1"))
    drain(app)
    app.process(ShipOrder(order_id="o1"))  # shipped again: a second OrderShipped
    drain(app)
    assert SENT == ["o1", "o1"]


def test_the_redelivery_sweep_republishes_a_stored_event_the_broker_lost(outbox_off, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from protean_celery.broker import Sighting
    from protean_celery.redelivery import sweep

    class NothingFound:
        def reclaim(self, older_than, **_):
            return []

        def locate(self, wanted, **_):
            return Sighting(found=set(), workers=1)

    monkeypatch.setattr(sweep, "broker_for", lambda celery: NothingFound())
    app = outbox_off(redeliver_after=5)
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
    app.relay()
    with app.connection_for_write() as connection:  # the broker loses every message
        for queue in app.topology.queues:
            queue.bind(connection.default_channel).purge()
    report = app.runtime.sweep.run(now=datetime.now(UTC) + timedelta(seconds=60))
    assert report.redelivered == 2  # OrderPlaced, to the process manager and to the projector
    depths = queue_depths(app)
    assert (depths["protean.shop.Fulfilment"], depths["protean.shop.OrderViews"]) == (1, 1)
