"""Celery's pytest fixtures (celery_app, celery_worker) on the ProteanCelery test app:
an in-thread worker on memory:// handles the whole saga."""

import pytest

from protean_celery.testing.drain import queue_depths
from tests.examples.saga_facts import COMPENSATED, COMPLETED
from tests.examples.test_orders_toolkit import STEPS_COMPENSATED, STEPS_COMPLETED, _facts, _place
from tests.integration.flaky import wait_until


def test_celery_app_is_the_protean_app(celery_app, protean_celery_app):
    assert celery_app is protean_celery_app
    assert "protean.orders.OrderFulfillment" in celery_app.tasks


@pytest.mark.celery(task_default_priority=7)
def test_the_celery_marker_applies_for_one_test_only(celery_app):
    assert celery_app.conf.task_default_priority == 7


def test_the_marker_was_restored(celery_app):
    assert celery_app.conf.task_default_priority is None


def test_an_in_thread_worker_ends_the_saga(celery_app, celery_worker):
    celery_app.process(_place("o-fixture"))
    celery_app.process(_place("o-fixture-declined", declined=True))
    expected = {
        "o-fixture": {**COMPLETED, "saga_steps": STEPS_COMPLETED},
        "o-fixture-declined": {**COMPENSATED, "saga_steps": STEPS_COMPENSATED},
    }
    facts = {}

    def settled():
        facts.update({order: _facts(celery_app, order) for order in expected})
        return facts == expected and not any(queue_depths(celery_app).values())

    wait_until(settled, "both sagas and their projections to end", timeout=60)
    assert facts == expected
    assert celery_app.runtime.dead_letters.list() == []
