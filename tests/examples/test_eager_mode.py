"""Celery's eager mode (task_always_eager): app.process runs the whole cascade in this process."""

import warnings
from dataclasses import replace

import pytest
from celery.exceptions import AlwaysEagerIgnored

from protean_celery.errors import EagerCascadeLimit
from protean_celery.testing.drain import queue_depths
from tests.examples.saga_facts import COMPENSATED, COMPLETED
from tests.examples.test_orders_toolkit import STEPS_COMPENSATED, STEPS_COMPLETED, _facts, _place


@pytest.fixture
def eager_app(protean_celery_app, monkeypatch):
    monkeypatch.setitem(protean_celery_app.conf, "task_always_eager", True)
    return protean_celery_app


def test_process_runs_the_whole_saga_in_eager_mode(eager_app):
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlwaysEagerIgnored)  # the relay publishes nothing to the broker
        eager_app.process(_place("o-eager"))
    assert _facts(eager_app, "o-eager") == {**COMPLETED, "saga_steps": STEPS_COMPLETED}
    assert not any(queue_depths(eager_app).values())
    assert eager_app.runtime.relay.pending() == 0
    assert eager_app.runtime.dead_letters.list() == []


def test_a_compensated_saga_in_eager_mode(eager_app):
    eager_app.process(_place("o-eager-declined", declined=True))
    assert _facts(eager_app, "o-eager-declined") == {**COMPENSATED, "saga_steps": STEPS_COMPENSATED}


def test_without_eager_mode_process_only_relays(protean_celery_app):
    protean_celery_app.process(_place("o-lazy"))
    assert _facts(protean_celery_app, "o-lazy")["order"] is None  # the command waits in its queue
    assert sum(queue_depths(protean_celery_app).values()) == 1


def test_a_cascade_past_its_bound_stops_and_keeps_the_rest(eager_app, monkeypatch):
    monkeypatch.setattr(eager_app.runtime.relay.cascade, "max_tasks", 2)
    eager_app.process(_place("o-bounded"))  # the fast path logs the limit; app.process never fails on it
    cascade = eager_app.runtime.relay.cascade
    assert cascade.pending() > 0
    assert _facts(eager_app, "o-bounded")["order"] != "COMPLETED"
    monkeypatch.setattr(cascade, "max_tasks", 10_000)
    eager_app.relay()  # the next relay call of this thread applies what was kept
    assert cascade.pending() == 0
    assert _facts(eager_app, "o-bounded") == {**COMPLETED, "saga_steps": STEPS_COMPLETED}


def test_the_limit_is_raised_to_a_direct_relay_caller(eager_app, monkeypatch):
    # Fast path off: the command waits for a relay call of this thread (else the process's
    # relay thread may take it on the next commit of this thread and run the cascade there).
    monkeypatch.setattr(eager_app.runtime, "settings", replace(eager_app.runtime.settings, nudge=False))
    cascade = eager_app.runtime.relay.cascade
    monkeypatch.setattr(cascade, "max_tasks", 1)
    eager_app.process(_place("o-direct"))
    assert eager_app.runtime.relay.pending() == 1  # the command, not yet relayed
    with pytest.raises(EagerCascadeLimit, match="applied 1 tasks"):
        eager_app.relay()
    assert cascade.pending() > 0
    monkeypatch.setattr(cascade, "max_tasks", 10_000)
    eager_app.relay()
    assert _facts(eager_app, "o-direct") == {**COMPLETED, "saga_steps": STEPS_COMPLETED}
