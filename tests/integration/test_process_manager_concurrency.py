"""Two events for one process-manager instance, handled at the same moment on PostgreSQL.

The per-correlation lock normally serialises them; here it is switched off so both
handlers load the same saga version and race to write the next transition. The loser
gets ``ExpectedVersionError`` and is retried with fresh state: the saga ends in the
right state, with one transition per effective event.
"""

import threading

import pytest

from protean_celery.envelope import encode
from protean_celery.testing import Testbed as ProteanTestbed
from tests.support.shop import Fulfilment, PlaceOrder, ShipOrder, build_domain
from tests.support.tasks import FakeTask

pytestmark = pytest.mark.integration

TASK = "protean.shop.Fulfilment"



@pytest.fixture
def app(postgres_server, tmp_path):
    url = postgres_server.create_database("pm_race")
    domain = build_domain(
        databases={"default": {"provider": "postgresql", "database_uri": url}},
        event_store={"provider": "sqlalchemy", "database_uri": url},
    )
    bed = ProteanTestbed(domain, tmp_path, settings={"nudge": False}, keep_config=True)
    yield bed.setup()
    bed.teardown()


def test_two_events_racing_on_one_saga_end_in_the_right_state(app, monkeypatch):
    from protean_celery.tasks import execute, handle

    domain, runtime = app.domain, app.runtime
    store = domain.event_store.store
    category = str(Fulfilment.meta_.stream_category)
    route = app.topology.route(TASK)
    with domain.domain_context():
        domain.process(PlaceOrder(order_id="o1"), asynchronous=False)
        placed = store.read("shop::order-o1")[-1]
    assert execute(FakeTask(), runtime, route, encode(placed)) == "handled"  # the saga starts
    with domain.domain_context():
        domain.process(ShipOrder(order_id="o1"), asynchronous=False)
        domain.process(ShipOrder(order_id="o1"), asynchronous=False)
        shipped = [m for m in store.read("shop::order-o1") if m.metadata.headers.type.endswith("OrderShipped.v1")]
    assert len(shipped) == 2

    import protean_celery.tasks as tasks

    monkeypatch.setattr(tasks, "serial_key", lambda route, message: None)
    both_loaded = threading.Barrier(2, timeout=5)
    original = store._write

    def write_after_both_loaded(stream_name, *args, **kwargs):
        if stream_name == f"{category}-o1":
            try:
                both_loaded.wait()
            except threading.BrokenBarrierError:
                pass  # a retry: the other thread is gone
        return original(stream_name, *args, **kwargs)

    retries = []
    sleep = handle.time.sleep
    monkeypatch.setattr(store, "_write", write_after_both_loaded)
    monkeypatch.setattr(handle.time, "sleep", lambda seconds: retries.append(seconds) or sleep(seconds))
    outcomes, errors = [], []

    def run(message):
        try:
            outcomes.append(execute(FakeTask(), runtime, route, encode(message)))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(message,)) for message in shipped]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert outcomes == ["handled", "handled"]
    assert retries, "the two handlers never collided: the test proved nothing"
    with domain.domain_context():
        transitions = store.read(f"{category}-o1")
    assert [m.data["handler_name"] for m in transitions] == ["placed", "shipped"]
    assert transitions[-1].data["is_complete"] is True
