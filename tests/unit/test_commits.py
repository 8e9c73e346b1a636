"""The fast path on SQLite files: what a commit wrote leaves at once, by id; nothing rolled back ever leaves."""

import time

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from protean_celery.testing.drain import queue_depths
from tests.support.shop import PlaceOrder

FULFILMENT = "protean.shop.Fulfilment"
COMMANDS = "protean.shop.commands.Order"


@pytest.fixture
def app(sqlite_shop):
    return sqlite_shop()


def _outbox(app):
    with app.domain.domain_context():
        return {status: n for status, n in app.domain._get_outbox_repo("default").count_by_status().items() if n}


def _wait(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_app_process_publishes_the_committed_outbox_row_by_id_and_marks_it(app):
    app.process(PlaceOrder(order_id="o1"), asynchronous=False)
    assert queue_depths(app)[FULFILMENT] == 1
    assert _outbox(app) == {"published": 1}
    assert app.relay().moved == 0  # nothing left for a tick


def test_protean_domain_process_publishes_without_a_relay_run(app):
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o1"))  # async: appended to the event store on its own
    assert queue_depths(app)[COMMANDS] == 1  # relayed in this thread, as the append returned
    with app.domain.domain_context():
        app.domain.process(PlaceOrder(order_id="o2"), asynchronous=False)  # a Unit of Work commits
    assert _wait(lambda: queue_depths(app)[FULFILMENT] == 1)  # by the relay thread
    assert _wait(lambda: _outbox(app) == {"published": 1})


def test_a_rolled_back_unit_of_work_publishes_nothing(app):
    class Boom(Exception):
        pass

    def fail_once(session, _context):
        raise Boom  # after the fast path saw the flushed outbox row, before the commit

    event.listen(Session, "after_flush", fail_once, once=True)
    with pytest.raises(Exception, match="Boom|Transaction"):  # noqa: B017 - Protean wraps it
        app.process(PlaceOrder(order_id="o1"), asynchronous=False)
    assert queue_depths(app)[FULFILMENT] == 0
    app.process(PlaceOrder(order_id="o2"), asynchronous=False)  # a later commit sends only its own row
    assert queue_depths(app)[FULFILMENT] == 1
    assert _outbox(app) == {"published": 1}


def test_the_flower_argsrepr_names_the_message_not_its_data(app):
    app.process(PlaceOrder(order_id="secret-o1"), asynchronous=False)
    with app.connection_for_read() as connection:
        queue = next(q for q in app.topology.queues if q.name == FULFILMENT)
        message = queue.bind(connection.default_channel).get(no_ack=True, accept=["json"])
    shown = message.headers["argsrepr"]
    assert shown.startswith("Shop.OrderPlaced.v1 stream=shop::order-secret-o1 id=")
    assert "order_id" not in shown and message.headers["kwargsrepr"] == "{}"


def test_the_relay_thread_outlives_a_failing_relay_and_flushes_what_it_holds():
    from protean_celery.commits import Committed, _RelayThread

    seen = []

    def relay(committed):
        seen.append(sorted(committed.categories))
        if committed.categories == {"fails"}:
            raise RuntimeError("broker down")

    thread = _RelayThread(relay)
    thread.submit(Committed(categories={"fails"}))
    thread.finish(timeout=5)
    thread.submit(Committed(categories={"a::b"}))
    thread.finish(timeout=5)
    assert seen == [["fails"], ["a::b"]]


def test_a_committed_row_that_cannot_be_published_is_left_pending_and_the_rest_go_out(sqlite_shop):
    app = sqlite_shop(max_payload_bytes=1000)
    with app.runtime.commits.deferred(), app.domain.domain_context():  # two commits, one relay batch
        app.domain.process(PlaceOrder(order_id="small"), asynchronous=False)
        app.domain.process(PlaceOrder(order_id="x" * 200), asynchronous=False)  # too large to publish
    app.runtime.nudge()
    assert queue_depths(app)[FULFILMENT] == 1  # the small one went out
    assert _outbox(app) == {"published": 1, "pending": 1}  # the large one is not lost, nor marked
    assert app.relay().failed == 1  # the tick's claim records why
    assert _outbox(app) == {"published": 1, "failed": 1}
