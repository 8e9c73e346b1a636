"""``run_handler``: one message through one handler, with the inbox saying whether it ran."""

from dataclasses import replace

import pytest

from protean_celery.errors import UnknownHandlerError
from protean_celery.tasks.handle import Outcome, run_handler
from tests.support.shop import Order, PlaceOrder

COMMANDS = "protean.shop.commands.Order"


@pytest.fixture
def app(sqlite_shop):
    return sqlite_shop()


def _command(app, order_id="o1"):
    app.process(PlaceOrder(order_id=order_id))
    with app.domain.domain_context():
        return app.domain.event_store.store.read("shop::order:command")[-1]


def _spec(app, task=COMMANDS):
    return app.topology.route(task).spec


def test_a_message_is_handled_once_and_its_copy_is_a_duplicate(app):
    message = _command(app)
    inbox = app.runtime.inbox
    assert run_handler(app.domain, _spec(app), message, inbox=inbox) is Outcome.HANDLED
    assert run_handler(app.domain, _spec(app), message, inbox=inbox) is Outcome.DUPLICATE
    with app.domain.domain_context():
        assert app.domain.repository_for(Order).get("o1").status == "placed"
    assert inbox.handled([(_key(message), "tests.support.shop.Order")])


def test_a_command_type_the_dispatcher_has_no_handler_for_names_the_fix(app):
    without_place = replace(_spec(app), commands={})  # a dispatcher deployed before PlaceOrder's handler
    with pytest.raises(UnknownHandlerError, match="register a command handler for Shop.PlaceOrder.v1"):
        run_handler(app.domain, without_place, _command(app))


def test_a_failing_handler_leaves_no_effect_and_no_marker(app, monkeypatch):
    from tests.support.shop import OrderCommands

    def fail(self, command):
        raise RuntimeError("warehouse offline")

    monkeypatch.setitem(OrderCommands._handlers, "Shop.PlaceOrder.v1", {fail})
    message = _command(app)
    with pytest.raises(RuntimeError, match="warehouse offline"):
        run_handler(app.domain, _spec(app), message, inbox=app.runtime.inbox)
    assert app.runtime.inbox.handled([(_key(message), "tests.support.shop.Order")]) == set()


def _key(message):
    from protean_celery.envelope import message_key

    return message_key(message)
