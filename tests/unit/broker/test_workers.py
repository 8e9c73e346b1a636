"""What the workers say they hold, asked through Celery's remote control (a stand-in answers here)."""

from types import SimpleNamespace

from protean_celery.broker.workers import consumed_queues, count_held, held_by_workers, search_workers


def _celery(query_task=None, active=None, reserved=None, fail=False, active_queues=None):
    def inspect(timeout):
        if fail:
            raise ConnectionError("broker hiccup")
        return SimpleNamespace(
            query_task=lambda *ids: query_task, active=lambda: active, reserved=lambda: reserved,
            active_queues=lambda: active_queues,
        )

    return SimpleNamespace(control=SimpleNamespace(inspect=inspect))


def test_held_ids_come_from_every_answering_worker():
    celery = _celery(query_task={"w1": {"t1": ["active", {}]}, "w2": {"t3": ["reserved", {}]}, "w3": {}})
    assert held_by_workers(celery, ["t1", "t2", "t3"], timeout=0.1) == ({"t1", "t3"}, 3)


def test_asking_that_fails_is_no_answer_not_an_error():
    assert held_by_workers(_celery(fail=True), ["t1"], timeout=0.1) == (set(), 0)


def test_the_count_leaves_out_ignored_task_names():
    active = {"w1": [{"name": "protean.shop.Notifier"}, {"name": "protean.shop.relay.outbox"}]}
    reserved = {"w1": [{"name": "protean.shop.Notifier"}], "w2": []}
    celery = _celery(active=active, reserved=reserved)
    assert count_held(celery, ignore={"protean.shop.relay.outbox"}, timeout=0.1) == 2
    assert count_held(_celery(), ignore=(), timeout=0.1) == 0  # nobody answered


def test_a_queue_with_waiting_messages_is_unsure_and_no_answer_makes_every_queue_unsure():
    wanted = {"q1": {"t1"}, "q2": {"t2"}}
    answered = search_workers(_celery(query_task={"w1": {"t2": []}}), wanted, {"q1": 3, "q2": 0}, timeout=0.1)
    assert (answered.found, answered.unsure, answered.workers) == ({"t2"}, {"q1"}, 1)
    silent = search_workers(_celery(query_task={}), wanted, {"q1": 0, "q2": 0}, timeout=0.1)
    assert silent.unsure == {"q1", "q2"} and silent.workers == 0


def test_the_consumed_queues_are_those_of_every_answering_worker():
    replies = {"w1": [{"name": "a"}, {"name": "b"}], "w2": [{"name": "c"}]}
    assert consumed_queues(_celery(active_queues=replies), timeout=0.1) == {"a", "b", "c"}
    assert consumed_queues(_celery(active_queues=None), timeout=0.1) is None  # no worker answered
    assert consumed_queues(_celery(fail=True), timeout=0.1) is None
