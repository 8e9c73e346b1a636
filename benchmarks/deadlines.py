"""Deadlines: does a beat tick cost the same with 1,000 and 100,000 deadlines pending?

    python benchmarks/deadlines.py [--sizes 1000,100000] [--profile sqlite|postgres] [--ticks 10]

For each size N, on the shop test domain (SQLite files, or PostgreSQL on loopback):

1. schedules N deadlines with ``deadlines.schedule`` (1,000 per Unit of Work) and
   prints the rate;
2. **idle tick**: all N due tomorrow, nothing due now: the median time of a tick
   (``fire_due``) that finds nothing to fire;
3. **claim**: with those N still pending, ``--ticks`` batches of
   ``deadline_batch_size`` (200) more are scheduled due now; the median time of the
   tick's claim of one batch (the ``DELETE … RETURNING`` through the index, rolled
   back): the only part of a tick that could grow with the rows pending;
4. **firing tick**: the median time of a tick that fires one batch, each deadline
   a ``PlaceOrder`` command appended to the event store through ``domain.process``,
   in one transaction: mostly Protean's cost of processing 200 commands.

The tick reads the ``(status, due_at)`` index only, so both figures should stay
flat from 1,000 to 100,000. The relay after the tick is off (``nudge=False``):
this measures the firing, not the broker. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 200


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="pending deadlines to measure with (1000,100000)")
    parser.add_argument("--profile", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--ticks", type=int, default=10, help="ticks timed per figure (10)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    logging.disable(logging.WARNING)  # Protean logs every query above 100 ms on a loaded machine
    with ExitStack() as stack:
        app = _app(args.profile, stack)
        print(f"deadlines benchmark, {args.profile}, batch {BATCH}, {args.ticks} ticks per figure", flush=True)
        _schedule(app, BATCH, timedelta(seconds=-1), first=500_000)  # warm-up: compile caches, first connections
        _ticks(app, 1, expect=BATCH)
        head = f"{'pending':>9}  {'schedule/s':>10}  {'idle tick ms':>12}  {'claim ms':>8}  {'firing tick ms':>14}"
        print(f"{head}  claim plan")
        for size in sizes:
            rate = _schedule(app, size, timedelta(days=1))
            idle = _ticks(app, args.ticks * 5)
            _schedule(app, BATCH * args.ticks, timedelta(seconds=-1), first=size)
            claim = _claims(app, args.ticks * 5)
            plan = _claim_plan(app)
            firing = _ticks(app, args.ticks, expect=BATCH)
            _reset(app)
            print(f"{size:>9}  {rate:>10.0f}  {idle:>12.2f}  {claim:>8.2f}  {firing:>14.1f}  {plan}", flush=True)
    return 0


def _app(profile: str, stack: ExitStack) -> Any:
    from protean_celery.testing import FakeClock, Testbed
    from protean_celery.testing.servers import PostgresServer
    from tests.support.shop import build_domain

    domain = build_domain("bench")
    state = Path(tempfile.mkdtemp(prefix="deadlines-bench-"))
    settings = {"nudge": False, "deadline_batch_size": BATCH}
    if profile == "sqlite":
        bed = Testbed(domain, state, settings=settings)
    else:
        url = stack.enter_context(PostgresServer()).create_database("deadlines")
        domain.config["databases"] = {"default": {"provider": "postgresql", "database_uri": url}}
        domain.config["event_store"] = {"provider": "sqlalchemy", "database_uri": url}
        bed = Testbed(domain, state, settings={**settings, "state_database_uri": url}, keep_config=True)
    app = bed.setup()
    stack.callback(bed.teardown)
    FakeClock.install(app.domain)  # the clock stands still: "now" is the same for every tick
    return app


def _schedule(app: Any, count: int, after: timedelta, first: int = 0) -> float:
    from protean.core.unit_of_work import UnitOfWork

    from protean_celery import deadlines
    from tests.support.shop import PlaceOrder

    started = time.perf_counter()
    with app.domain.domain_context():
        for start in range(first, first + count, 1000):
            with UnitOfWork():
                for number in range(start, min(start + 1000, first + count)):
                    deadlines.schedule(PlaceOrder(order_id=f"o{number}"), after=after + timedelta(microseconds=number))
    rate = count / (time.perf_counter() - started)
    _analyze(app)
    return rate


def _analyze(app: Any) -> None:
    """PostgreSQL: fresh planner statistics, as autovacuum gathers them within a minute of a bulk insert.

    Without them the planner still believes the table empty right after 100,000
    inserts and scans it instead of reading the ``(status, due_at)`` index.
    """
    from sqlalchemy import text

    from protean_celery.deadlines import DeadlineStore

    engine = DeadlineStore(app.domain).engine
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE protean_celery_deadlines"))


def _ticks(app: Any, ticks: int, expect: int = 0) -> float:
    """The median milliseconds of ``ticks`` one-batch ticks (each must fire ``expect``)."""
    from protean_celery.deadlines import fire_due

    times = []
    for _ in range(ticks):
        started = time.perf_counter()
        report = fire_due(app.runtime, max_batches=1)
        times.append((time.perf_counter() - started) * 1000)
        assert report.fired == expect, report
    return statistics.median(times)


def _claims(app: Any, times: int) -> float:
    """The median milliseconds of claiming one batch of due deadlines (rolled back: the rows stay)."""
    from protean_celery.deadlines import DeadlineStore
    from protean_celery.deadlines.firing import _claim
    from protean_celery.deadlines.table import utc

    store, now, took = DeadlineStore(app.domain), utc(app.domain.clock.now()), []
    for _ in range(times):
        with store.engine.connect() as conn:
            transaction = conn.begin()
            started = time.perf_counter()
            assert len(_claim(conn, now, BATCH)) == BATCH
            took.append((time.perf_counter() - started) * 1000)
            transaction.rollback()
    return statistics.median(took)


def _claim_plan(app: Any) -> str:
    """How the claim reads the table: PostgreSQL's buffers touched (EXPLAIN ANALYZE), SQLite's plan.

    Unlike the times, this does not move with the machine's load.
    """
    from sqlalchemy import text

    from protean_celery.deadlines import DeadlineStore
    from protean_celery.deadlines.firing import _claim_statement
    from protean_celery.deadlines.table import utc

    engine = DeadlineStore(app.domain).engine
    sql = str(_claim_statement(utc(app.domain.clock.now()), BATCH).compile(
        engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        transaction = conn.begin()
        if engine.dialect.name == "postgresql":
            [[plan]] = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)).all()
            top = plan[0]["Plan"]
            found = f"{top['Shared Hit Blocks'] + top['Shared Read Blocks']} buffers"
        else:
            steps = [row[-1] for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql))]
            found = "; ".join(step for step in steps if "deadlines_due" in step) or "; ".join(steps)
        transaction.rollback()
    return found


def _reset(app: Any) -> None:
    from protean_celery import storage

    storage.truncate(app.domain, app.runtime.state)


if __name__ == "__main__":
    sys.exit(main())
