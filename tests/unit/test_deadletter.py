"""Dead letters: which task and message pairs they hold."""

import sqlalchemy as sa

from protean_celery.deadletter import DeadLetters


def test_dead_letters_say_which_task_and_message_pairs_they_hold(tmp_path):
    store = DeadLetters(sa.create_engine(f"sqlite:///{tmp_path}/dlq.db"))
    store.setup()
    payload = {"data": {}, "metadata": {"headers": {"id": "m1", "type": "T.v1"}}}
    store.park("task.a", payload, RuntimeError("boom"))
    assert store.parked([("task.a", "m1"), ("task.b", "m1"), ("task.a", "m2")]) == {("task.a", "m1")}
    assert store.parked([]) == set()
