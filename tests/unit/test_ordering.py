"""Ordered lanes: a message runs in its stream's order, passing over what its handler never takes or is done with."""

import pytest
from protean.utils.eventing import Message

from protean_celery.errors import ConfigurationError, OutOfTurn
from protean_celery.settings import load_settings
from protean_celery.tasks.handle import Outcome, run_handler
from protean_celery.tasks.process_manager import EarlyEventError
from protean_celery.turns import Turns
from tests.support.shop import PlaceOrder, ShipOrder

FULFILMENT = "protean.shop.Fulfilment"
NOTIFIER = "protean.shop.Notifier"


@pytest.fixture
def app(sqlite_shop):
    return sqlite_shop(handlers={"Fulfilment": {"ordered": True}, "Notifier": {"ordered": True}})


def _events(app, order_id="o1"):
    """OrderPlaced (position 0) and OrderShipped (position 1) of one order, as the event store holds them."""
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id=order_id), asynchronous=False)
        app.domain.process(ShipOrder(order_id=order_id), asynchronous=False)
        return app.domain.event_store.store.read(f"shop::order-{order_id}")


def _run(app, task, message):
    route = app.topology.route(task)
    runtime = app.runtime
    return run_handler(app.domain, route.spec, message, inbox=runtime.inbox, transitions=runtime.transitions,
                       lock=runtime.ordering.lock(route, message, None), turn=runtime.ordering.turn(route, message))


def _lane(app, task, order_id="o1"):
    return Turns(app.domain).position(f"{app.topology.route(task).spec.path}|shop::order-{order_id}")


def test_a_message_ahead_of_its_predecessor_waits_and_runs_once_the_predecessor_did(app):
    placed, shipped = _events(app)
    with pytest.raises(OutOfTurn, match="position 1 of shop::order-o1, but Fulfilment has not handled position 0"):
        _run(app, FULFILMENT, shipped)
    assert _lane(app, FULFILMENT) is None  # nothing moved, nothing marked
    assert not app.runtime.inbox.handled([(str(shipped.metadata.headers.id), app.topology.route(FULFILMENT).spec.path)])
    assert _run(app, FULFILMENT, placed) is Outcome.HANDLED
    assert _run(app, FULFILMENT, shipped) is Outcome.HANDLED
    assert _lane(app, FULFILMENT) == 1


def test_positions_the_handler_never_takes_are_passed_over(app):
    _, shipped = _events(app)  # Notifier takes OrderShipped only: position 0 is not its
    assert _run(app, NOTIFIER, shipped) is Outcome.HANDLED
    assert _lane(app, NOTIFIER) == 1


def test_a_predecessor_the_handler_is_done_with_counts_as_handled(app):
    _, shipped = _events(app)
    with app.domain.domain_context():
        app.domain.process(ShipOrder(order_id="o1"), asynchronous=False)  # shipped again: position 2
        again = app.domain.event_store.store.read("shop::order-o1")[2]
    with pytest.raises(OutOfTurn, match="Notifier has not handled position 1"):
        _run(app, NOTIFIER, again)
    app.runtime.inbox.mark(str(shipped.metadata.headers.id), app.topology.route(NOTIFIER).spec.path)  # e.g. expired
    assert _run(app, NOTIFIER, again) is Outcome.HANDLED
    assert _lane(app, NOTIFIER) == 2


def test_an_outbox_event_without_its_position_is_placed_by_its_id(app):
    placed, shipped = _events(app)
    relayed = [Message.deserialize({**m.to_dict(), "metadata": {**m.to_dict()["metadata"], "event_store": None}})
               for m in (placed, shipped)]
    assert relayed[1].metadata.event_store is None
    assert app.runtime.ordering.position(relayed[1]) == 1
    with pytest.raises(OutOfTurn):
        _run(app, FULFILMENT, relayed[1])
    assert _run(app, FULFILMENT, relayed[0]) is Outcome.HANDLED
    assert _run(app, FULFILMENT, relayed[1]) is Outcome.HANDLED


def test_a_message_below_the_lane_is_a_duplicate_even_without_its_marker(app):
    placed, shipped = _events(app)
    assert _run(app, FULFILMENT, placed) is Outcome.HANDLED
    assert _run(app, FULFILMENT, shipped) is Outcome.HANDLED
    app.runtime.inbox.truncate()  # markers pruned
    assert _run(app, FULFILMENT, placed) is Outcome.DUPLICATE


def test_lanes_of_different_streams_do_not_wait_for_each_other(app):
    first, second = _events(app, "o1"), _events(app, "o2")
    assert _run(app, FULFILMENT, second[0]) is Outcome.HANDLED
    assert _run(app, FULFILMENT, first[0]) is Outcome.HANDLED
    assert (_lane(app, FULFILMENT, "o1"), _lane(app, FULFILMENT, "o2")) == (0, 0)


def test_handlers_are_unordered_unless_configured(sqlite_shop):
    app = sqlite_shop()
    _, shipped = _events(app)
    route = app.topology.route(FULFILMENT)
    assert app.runtime.ordering.turn(route, shipped) is None
    with pytest.raises(EarlyEventError):  # no lane: the early event is the process manager's own failure
        _run(app, FULFILMENT, shipped)
    assert _run(app, NOTIFIER, shipped) is Outcome.HANDLED and _lane(app, NOTIFIER) is None


def test_ordered_for_every_handler_or_one_and_a_clear_error_for_a_bad_value():
    assert load_settings({"custom": {"celery": {"ordered": True}}}).for_handler("Any").ordered is True
    settings = load_settings({"custom": {"celery": {"handlers": {"Fulfilment": {"ordered": True}}}}})
    assert (settings.for_handler("Fulfilment").ordered, settings.for_handler("Notifier").ordered) == (True, None)
    with pytest.raises(ConfigurationError, match=r"ordered must be true or false, got 'yes'"):
        load_settings({"custom": {"celery": {"handlers": {"Fulfilment": {"ordered": "yes"}}}}})
    with pytest.raises(ConfigurationError, match="ordering_retries must be zero or positive"):
        load_settings({"custom": {"celery": {"ordering_retries": -1}}})


def test_a_task_tries_an_out_of_turn_message_again_in_process_before_deferring_it(monkeypatch):
    import protean_celery.ordering as ordering

    monkeypatch.setattr(ordering.time, "sleep", lambda seconds: None)
    attempts = []

    def run(succeed_at):
        attempts.append(1)
        if len(attempts) < succeed_at:
            raise OutOfTurn("not yet", missing=0)
        return "handled"

    assert ordering.patiently(lambda: run(3)) == "handled" and len(attempts) == 3
    attempts.clear()
    with pytest.raises(OutOfTurn):
        ordering.patiently(lambda: run(99))
    assert len(attempts) == len(ordering.PATIENCE) + 1


def test_a_command_is_placed_by_its_stored_position_even_the_first(sqlite_shop):
    app = sqlite_shop(ordered=True)  # every handler, the command dispatcher included
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o1"))  # asynchronous: stored at position 0 of its stream
        [command] = app.domain.event_store.store.read("shop::order:command-o1")
    assert app.runtime.ordering.position(command) == 0
    assert _run(app, "protean.shop.commands.Order", command) is Outcome.HANDLED
    assert Turns(app.domain).position("tests.support.shop.Order|shop::order:command-o1") == 0
