"""EagerCascade: breadth-first, no recursion, only while the app is eager and a relay call is open."""

from types import SimpleNamespace

from protean_celery.eager import EagerCascade, settles


class _Result:
    state = "SUCCESS"
    result = None

    def successful(self):
        return True


class _Task:
    def __init__(self, name, ran, relay):
        self.name, self.ran, self.relay = name, ran, relay

    def apply(self, args, task_id, throw):
        self.ran.append(task_id)
        self.relay.produce(task_id)
        return _Result()


class _Relay:
    """A relay whose every task produces two children until depth 2: a → a.1, a.2 → a.1.1 …"""

    def __init__(self, celery):
        self.celery = celery
        self.cascade = None

    @settles
    def produce(self, parent):
        if parent.count(".") < 2:
            for child in (1, 2):
                if not self.cascade.defer("t", {}, f"{parent}.{child}"):
                    self.celery.sent.append(f"{parent}.{child}")

    @settles
    def start(self, roots):
        for root in roots:
            if not self.cascade.defer("t", {}, root):
                self.celery.sent.append(root)


def _setup(eager=True, max_tasks=100):
    ran = []
    celery = SimpleNamespace(conf=SimpleNamespace(task_always_eager=eager), sent=[], tasks={})
    relay = _Relay(celery)
    relay.cascade = EagerCascade(celery, max_tasks=max_tasks)
    celery.tasks["t"] = _Task("t", ran, relay)
    return relay, ran


def test_tasks_run_breadth_first_when_the_outermost_call_returns():
    relay, ran = _setup()
    relay.start(["a", "b"])
    assert ran == [
        "a", "b", "a.1", "a.2", "b.1", "b.2",
        "a.1.1", "a.1.2", "a.2.1", "a.2.2", "b.1.1", "b.1.2", "b.2.1", "b.2.2",
    ]
    assert relay.celery.sent == [] and relay.cascade.pending() == 0


def test_not_eager_publishes_as_usual():
    relay, ran = _setup(eager=False)
    relay.start(["a"])
    assert ran == [] and relay.celery.sent == ["a"]


def test_outside_a_relay_call_nothing_is_deferred():
    relay, _ = _setup()
    assert relay.cascade.defer("t", {}, "x") is False
    assert relay.cascade.pending() == 0
