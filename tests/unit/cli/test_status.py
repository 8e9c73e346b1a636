"""``protean status``: what waits in each queue, what is in flight, dead letters, per task."""

from types import SimpleNamespace

from click.testing import CliRunner

from protean_celery.cli import protean


def _status(app):
    result = CliRunner().invoke(protean, ["status"], obj=SimpleNamespace(app=app))
    assert result.exit_code == 0, result.output
    return result.output


def test_status_counts_queued_messages_and_dead_letters_per_task(shop_app):
    queue = shop_app.topology.queues[0]
    with shop_app.connection_for_write() as connection:
        connection.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key)
    shop_app.runtime.dead_letters.park("task.a", {"data": {}}, RuntimeError("boom"))
    output = _status(shop_app)
    assert f"queue      {queue.name}  1" in output
    assert "in flight  0" in output
    assert "dead letters  1" in output and "  task.a  1" in output
