"""Event store benchmark: appends/s, stream reads/s and category reads/s.

    python benchmarks/event_store.py [--appends 2000] [--sizes 10000,100000]

Runs the SQL event store on SQLite and on a real PostgreSQL, and Protean's
message_db store on the same PostgreSQL (schema from @eventide/message-db).
Then grows a PostgreSQL store of each kind to each size in --sizes and times
category reads by global position at the tail, to show whether they stay flat.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import UTC

from protean_celery.testing.servers import PostgresServer  # noqa: E402
from tests.support.shop import build_domain  # noqa: E402

META = {"headers": {"id": "bench"}}


def _store(name: str, config: dict) -> object:
    domain = build_domain(name=name, event_store=config)
    domain.init(traverse=False)
    store = domain.event_store.store
    if hasattr(store, "setup"):
        store.setup()
    return store


def _rate(count: int, fn) -> float:
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    return count / (time.perf_counter() - start)


def measure(label: str, store, appends: int) -> None:
    streams = 100
    append = _rate(appends, lambda i: store._write(f"bench::item-{i % streams}", "T", {"i": i}, META))
    stream_reads = _rate(500, lambda i: store._read(f"bench::item-{i % streams}", no_of_messages=50))
    category_reads = _rate(500, lambda i: store._read("bench::item", position=i, no_of_messages=50))
    print(f"{label:28} appends {append:8.0f}/s   stream reads {stream_reads:7.0f}/s   "
          f"category reads {category_reads:7.0f}/s")


def growth(label: str, store, sizes: list[int]) -> None:
    written = 0
    for size in sizes:
        if hasattr(store, "engine"):
            _bulk_fill(store, size - written)
        else:
            for i in range(written, size):
                store._write(f"fill::item-{i % 1000}", "T", {"i": i}, META)
        written = size
        head = store._stream_head_position("$all")
        start = max(head - 5000, 0)
        rate = _rate(300, lambda i, start=start: store._read("fill::item", position=start + i, no_of_messages=50))
        print(f"{label:28} {size:>9} events: category reads at the tail {rate:7.0f}/s")


def _bulk_fill(store, count: int) -> None:
    from datetime import datetime

    from protean_celery.event_store.schema import events

    with store.engine.begin() as conn:
        start = conn.execute(events.select().with_only_columns(events.c.global_position)
                             .order_by(events.c.global_position.desc()).limit(1)).scalar() or 0
        rows = []
        for i in range(count):
            n = start + i
            rows.append({"stream_name": f"fill::item-{n % 1000}", "category": "fill::item",
                         "position": n // 1000, "id": f"f{n}", "type": "T", "data": {"i": n},
                         "metadata": META, "time": datetime.now(UTC)})
            if len(rows) == 5000:
                conn.execute(events.insert(), rows)
                rows = []
        if rows:
            conn.execute(events.insert(), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    measure("sqlalchemy on SQLite", _store("b1", {"provider": "sqlalchemy",
            "database_uri": f"sqlite:///{tempfile.mkdtemp()}/events.db"}), args.appends)
    with PostgresServer() as postgres:
        from protean_celery.testing.message_db import install_message_db

        sql = _store("b2", {"provider": "sqlalchemy", "database_uri": postgres.create_database("bench_sql")})
        mdb_url = postgres.create_database("bench_mdb")
        install_message_db(mdb_url)
        mdb = _store("b3", {"provider": "message_db", "database_uri": mdb_url})
        measure("sqlalchemy on PostgreSQL", sql, args.appends)
        measure("message_db on PostgreSQL", mdb, args.appends)
        growth("sqlalchemy on PostgreSQL", sql, sizes)


if __name__ == "__main__":
    main()
