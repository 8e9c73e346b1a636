"""The SQL event store's contract, on SQLite and on a real PostgreSQL."""

import multiprocessing
from collections import Counter

import pytest
from protean.exceptions import ExpectedVersionError

from protean_celery.errors import EventStoreError, EventStoreNotSetUp
from protean_celery.event_store.store import SQLEventStore
from tests.support.shop import PlaceOrder, build_domain

pytestmark = pytest.mark.integration

META = {"headers": {"id": "m"}}


@pytest.fixture(params=["sqlite", "postgresql"])
def uri(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    server = request.getfixturevalue("postgres_server")
    return server.create_database("contract")


@pytest.fixture
def store(uri):
    domain = build_domain(event_store={"provider": "sqlalchemy", "database_uri": uri})
    domain.init(traverse=False)
    store = domain.event_store.store
    assert isinstance(store, SQLEventStore)
    store.setup()
    with domain.domain_context():
        yield store
    store.close()


def _write(store, stream, n=1, **kw):
    return [store._write(stream, "T", {"n": i}, META, **kw) for i in range(n)]


def test_positions_are_gap_free_per_stream_and_global_positions_grow(store):
    assert _write(store, "shop::order-1", 3) == [0, 1, 2]
    assert _write(store, "shop::order-2", 2) == [0, 1]
    globals_ = [m["global_position"] for m in store._read("$all")]
    assert globals_ == sorted(globals_) and len(set(globals_)) == 5


def test_expected_version_is_checked(store):
    _write(store, "shop::order-1", 2)
    assert store._write("shop::order-1", "T", {}, META, expected_version=1) == 2
    with pytest.raises(ExpectedVersionError, match="Wrong expected version: 1"):
        store._write("shop::order-1", "T", {}, META, expected_version=1)
    assert store._write("shop::order-9", "T", {}, META, expected_version=-1) == 0


def test_category_reads_hold_only_their_category(store):
    for stream in ["shop::order-1", "shop::order:command-1", "shop::orderline-1",
                   "position-x-shop::order", "failed-x-shop::order", "shop::order-2"]:
        _write(store, stream)
    assert [m["stream_name"] for m in store._read("shop::order")] == ["shop::order-1", "shop::order-2"]
    assert [m["stream_name"] for m in store._read("shop::order:command")] == ["shop::order:command-1"]
    assert len(store._read("$all")) == 6


def test_reads_page_by_inclusive_position(store):
    _write(store, "shop::order-1", 5)
    assert [m["position"] for m in store._read("shop::order-1", position=2, no_of_messages=2)] == [2, 3]
    first, second = store._read("shop::order", no_of_messages=2), None
    second = store._read("shop::order", position=first[-1]["global_position"] + 1, no_of_messages=10)
    assert [m["position"] for m in first + second] == [0, 1, 2, 3, 4]


def test_last_message_identifiers_and_head(store):
    _write(store, "shop::order-a", 2)
    _write(store, "shop::order-b", 1)
    _write(store, "shop::order:snapshot-a", 1)
    assert store._read_last_message("shop::order-a")["position"] == 1
    assert store._read_last_message("shop::order")["stream_name"] == "shop::order-b"
    assert store._read_last_message("shop::order-zzz") is None
    assert store._stream_identifiers("shop::order") == ["a", "b"]
    head = store._stream_head_position("shop::order")
    assert head == store._read_last_message("shop::order")["global_position"]
    assert store._stream_head_position("nothing::here") == -1


def test_malformed_stream_names_are_skipped_as_protean_stores_do(store):
    for stream in ["test::user-", "test::user-a", "test::user-a", "test::user-b-c"]:
        _write(store, stream)
    assert store._stream_identifiers("test::user") == ["a", "b-c"]


def test_protean_memory_store_skips_malformed_stream_names_too():
    """The reference behaviour the SQL store matches."""
    domain = build_domain()
    domain.init(traverse=False)
    with domain.domain_context():
        for stream in ["test::user-", "test::user-a", "test::user-a", "test::user-b-c"]:
            _write(domain.event_store.store, stream)
        assert domain.event_store.store._stream_identifiers("test::user") == ["a", "b-c"]


def test_data_reset_empties_the_store(store):
    _write(store, "shop::order-1", 3)
    store._data_reset()
    assert store._read("$all") == []


def test_protean_round_trip_through_process(store):
    domain = store.domain
    domain.process(PlaceOrder(order_id="o1"))
    [message] = store.read("shop::order:command")
    assert message.metadata.headers.type == "Shop.PlaceOrder.v1"
    assert message.metadata.event_store.position == 0


def test_bad_streams_and_missing_tables_are_typed_errors(store, uri):
    with pytest.raises(EventStoreError, match="named stream"):
        store._write("$all", "T", {}, META)
    store.drop()
    with pytest.raises(EventStoreNotSetUp, match="protean db setup"):
        store._read("$all")


def _contend(uri, streams, rounds, results, ready):
    domain = build_domain(event_store={"provider": "sqlalchemy", "database_uri": uri})
    domain.init(traverse=False)
    store = domain.event_store.store
    won = lost = 0
    ready.wait(timeout=120)  # all four start appending together, however slowly each one started
    with domain.domain_context():
        for _ in range(rounds):
            for stream in streams:
                last = store._read_last_message(stream)
                version = -1 if last is None else last["position"]
                try:
                    store._write(stream, "T", {}, META, expected_version=version)
                    won += 1
                except ExpectedVersionError:
                    lost += 1
    results.put((won, lost))


def test_four_processes_appending_with_expected_versions_lose_nothing(store, uri):
    streams = ["race::item-1", "race::item-2", "race::item-3"]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    ready = context.Barrier(4)
    workers = [context.Process(target=_contend, args=(uri, streams, 25, results, ready)) for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    won = sum(w for w, _ in outcomes)
    lost = sum(lost for _, lost in outcomes)
    rows = store._read("$all", no_of_messages=10_000)
    per_stream = Counter(m["stream_name"] for m in rows)
    assert won + lost == 4 * 25 * 3
    assert len(rows) == won  # every win is stored, nothing else
    for stream in streams:
        positions = [m["position"] for m in rows if m["stream_name"] == stream]
        assert positions == list(range(per_stream[stream]))  # no duplicate, no gap
    assert lost > 0  # the processes really raced
