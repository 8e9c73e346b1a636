"""ProteanCelery: a task per handler and the relay's tasks; ``process`` places a command and relays it."""

from protean_celery.outbox.report import RelayReport
from protean_celery.testing.drain import queue_depths
from tests.support.shop import PlaceOrder

COMMANDS = "protean.shop.commands.Order"


def test_every_route_and_relay_task_is_registered(shop_app):
    wanted = {route.task_name for route in shop_app.topology.routes} | set(shop_app.topology.relay_tasks.values())
    assert wanted <= set(shop_app.tasks)


def test_process_places_the_command_and_relay_publishes_it_once(shop_app):
    shop_app.process(PlaceOrder(order_id="o1"))
    first, second = shop_app.relay(), shop_app.relay()
    assert isinstance(first, RelayReport) and first.commands + second.commands == 1
    assert queue_depths(shop_app)[COMMANDS] == 1
