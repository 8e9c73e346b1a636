"""The subscriber task body: handled, duplicate, retried, dead-lettered; poison dead-lettered at once."""

import pytest
from celery.exceptions import Reject, Retry

from protean_celery.subscribers.delivery import wrap
from protean_celery.subscribers.task import deliver
from tests.support.tasks import FakeTask
from tests.unit.subscribers.conftest import SEEN, STREAM

TASK = "protean.shop.PartnerFeed"


def _policy(app):
    from protean_celery.subscribers.policy import subscriber_policy

    return subscriber_policy(app.domain.config, app.settings, "PartnerFeed")


def test_the_registered_task_handles_a_message_once(sqlite_feed_app):
    envelope = wrap("default", STREAM, "1-0", {"ref": "o1"})
    task = sqlite_feed_app.tasks[TASK]
    assert task.apply(args=(envelope,)).get() == "handled"
    assert task.apply(args=(envelope,)).get() == "duplicate"
    assert len(SEEN) == 1


def test_a_failing_message_is_retried_with_the_handler_backoff(feed_app):
    envelope = wrap("default", STREAM, "1-0", {"ref": "x", "fail": True})
    task = FakeTask(0)
    [route] = feed_app.subscribers.routes
    with pytest.raises(Retry):
        deliver(task, feed_app.runtime, route, _policy(feed_app), envelope)
    countdown, budget = task.retried_with
    assert budget == 3 and 0.75 <= countdown <= 1.25
    assert feed_app.runtime.dead_letters.list(task=TASK) == []


def test_an_exhausted_message_is_dead_lettered_with_error_and_attempts(feed_app):
    envelope = wrap("default", STREAM, "1-0", {"ref": "x", "fail": True})
    [route] = feed_app.subscribers.routes
    with pytest.raises(RuntimeError):
        deliver(FakeTask(3), feed_app.runtime, route, _policy(feed_app), envelope)
    [entry] = feed_app.runtime.dead_letters.list(task=TASK)
    assert (entry.error, entry.attempts, entry.payload) == ("RuntimeError: cannot read x", 4, envelope)


@pytest.mark.parametrize("payload", [{}, [1], "text"])
def test_poison_is_dead_lettered_at_once_and_rejected_without_requeue(feed_app, payload):
    envelope = wrap("default", STREAM, "1-0", payload, raw={"data": "{oops"} if payload == {} else None)
    with pytest.raises(Reject) as info:
        feed_app.tasks[TASK].run(envelope)
    assert info.value.requeue is False
    [entry] = feed_app.runtime.dead_letters.list(task=TASK)
    assert entry.error.startswith("DecodeError:") and entry.payload == envelope and SEEN == []


def test_a_message_above_max_payload_bytes_is_dead_lettered_at_once():
    from protean_celery import ProteanCelery
    from protean_celery.outbox.cursor import MemoryCursorStore
    from tests.unit.subscribers.conftest import feed_domain

    domain = feed_domain()
    domain.init(traverse=False)
    app = ProteanCelery(domain, config={"broker_url": "memory://"}, cursors=MemoryCursorStore(), max_payload_bytes=100)
    SEEN.clear()
    with pytest.raises(Reject):
        app.tasks[TASK].run(wrap("default", STREAM, "1-0", {"ref": "x" * 200}))
    [entry] = app.runtime.dead_letters.list(task=TASK)
    assert entry.error.startswith("PayloadTooLarge:") and "max_payload_bytes = 100" in entry.error and SEEN == []
