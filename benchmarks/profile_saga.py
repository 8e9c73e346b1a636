"""Where one message's time goes: the orders saga through the task bodies, in process.

    python benchmarks/profile_saga.py [--orders 30] [--sqlite] [--cprofile out.prof]

Starts a private PostgreSQL (or uses SQLite files with ``--sqlite``), builds the
orders example on Kombu's in-memory transport and drains ``--orders`` sagas
through the same task bodies a worker runs, one message at a time. Prints, per
task kind, the wall time and the SQL statements (round trips) per message, and
the share of time spent in each step of a message's life, measured with
``cProfile`` (cumulative time of the step's function).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Steps of a message's life: label -> (module path fragment, function name).
STEPS = {
    "task total (Celery trace + body)": ("celery/app/trace.py", "trace_task"),
    "admit (size, decode, checks)": ("protean_celery/tasks/__init__.py", "_admit"),
    "inbox marker (+ serial lock)": ("protean_celery/inbox.py", "claim_marker"),
    "process-manager redelivery check": ("protean_celery/tasks/process_manager.py", "already_handled"),
    "handler + Unit of Work (inbox inside)": ("protean_celery/tasks/handle.py", "_invoke"),
    "Protean's Unit of Work commit": ("protean/core/unit_of_work.py", "commit"),
    "relay after commit": ("protean_celery/runtime.py", "_relay_committed"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=30)
    parser.add_argument("--sqlite", action="store_true", help="SQLite files instead of PostgreSQL")
    parser.add_argument("--cprofile", help="also write the raw profile here")
    parser.add_argument("--no-profile", action="store_true", help="time only (cProfile slows every call)")
    args = parser.parse_args()
    if args.sqlite:
        os.environ["PROTEAN_CELERY_STATE"] = tempfile.mkdtemp(prefix="profile-")
        _profile(args)
        return
    from protean_celery.testing.servers import PostgresServer

    with PostgresServer() as postgres:
        os.environ.update({"PROTEAN_ENV": "production", "DATABASE_URL": postgres.create_database("profile")})
        _profile(args)


def _profile(args: argparse.Namespace) -> None:
    import sqlalchemy as sa

    from protean_celery.testing import Testbed, drain
    from workers.orders.domain import PlaceOrder, domain

    bed = Testbed(domain, state_dir=os.environ.get("PROTEAN_CELERY_STATE", "."), keep_config=True)
    app = bed.setup()
    statements: Counter[str] = Counter()
    checkouts: Counter[str] = Counter()
    current = {"task": "placing"}

    @sa.event.listens_for(sa.Engine, "before_cursor_execute")
    def count(*_: object) -> None:
        statements[current["task"]] += 1

    @sa.event.listens_for(sa.pool.Pool, "checkout")
    def checkout(*_: object) -> None:  # a pre-pinging pool (Protean's) adds a round trip per checkout
        checkouts[current["task"]] += 1

    tasks: Counter[str] = Counter()
    seconds: defaultdict[str, float] = defaultdict(float)
    for name, task in app.tasks.items():
        if name.startswith("protean."):
            _time_task(task, name, current, tasks, seconds)

    _place(app, PlaceOrder, 3)  # warm up every path once
    drain(app)
    statements.clear(), checkouts.clear(), tasks.clear(), seconds.clear()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    if not args.no_profile:
        profiler.enable()
    _place(app, PlaceOrder, args.orders)
    report = drain(app, timeout=600)
    profiler.disable()
    elapsed = time.perf_counter() - started
    _print(args, report, elapsed, tasks, seconds, statements, checkouts, profiler)
    bed.teardown()


def _time_task(task: object, name: str, current: dict[str, str], tasks: Counter[str],
               seconds: defaultdict[str, float]) -> None:
    run = task.run  # type: ignore[attr-defined]
    short = name.split(".", 2)[-1]

    def timed(*a: object, **k: object) -> object:
        current["task"] = short
        started = time.perf_counter()
        try:
            return run(*a, **k)
        finally:
            seconds[short] += time.perf_counter() - started
            tasks[short] += 1
            current["task"] = "between tasks"

    task.run = timed  # type: ignore[attr-defined]


def _place(app: object, command: type, count: int) -> None:
    import uuid

    for number in range(count):
        app.process(command(order_id=f"p-{uuid.uuid4().hex[:8]}", customer="c", amount=10.0, sku="s",  # type: ignore[attr-defined]
                            quantity=1, declined=number % 10 == 9))


def _print(args: argparse.Namespace, report: object, elapsed: float, tasks: Counter[str],
           seconds: defaultdict[str, float], statements: Counter[str], checkouts: Counter[str],
           profiler: cProfile.Profile) -> None:
    total_tasks = sum(tasks.values())
    print(f"{args.orders} sagas, {total_tasks} tasks in {elapsed:.2f} s: {elapsed / args.orders * 1000:.1f} ms/saga, "
          f"{elapsed / max(total_tasks, 1) * 1000:.1f} ms/task; store {'SQLite' if args.sqlite else 'PostgreSQL'}")
    print(f"{'task':45} {'n':>5} {'ms/msg':>7} {'SQL/msg':>8} {'checkouts/msg':>14}")
    for name, n in sorted(tasks.items()):
        ms, sql, taken = seconds[name] / n * 1000, statements[name] / n, checkouts[name] / n
        print(f"{name:45} {n:5d} {ms:7.1f} {sql:8.1f} {taken:14.1f}")
    print(f"{'placing (app.process)':45} {args.orders:5d} {'':>7} {statements['placing'] / args.orders:8.1f}")
    between = statements["between tasks"] / max(total_tasks, 1)
    print(f"{'drain bookkeeping (between tasks)':45} {'':>5} {'':>7} {between:8.1f}")
    if args.no_profile:
        return
    stats = pstats.Stats(profiler)
    if args.cprofile:
        stats.dump_stats(args.cprofile)
    print(f"\n{'step':45} {'ms/task':>8} {'share':>6}")
    raw = stats.stats  # type: ignore[attr-defined]
    whole = _cumulative(raw, *STEPS["task total (Celery trace + body)"])
    for label, (path, function) in STEPS.items():
        cumulative = _cumulative(raw, path, function)
        share = cumulative / whole * 100 if whole else 0
        print(f"{label:45} {cumulative / max(total_tasks, 1) * 1000:8.2f} {share:5.0f}%")


def _cumulative(raw: dict, path: str, function: str) -> float:
    return sum(entry[3] for (file, _, name), entry in raw.items() if name == function and file.endswith(path))


if __name__ == "__main__":
    main()
