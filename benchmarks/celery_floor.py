"""What Celery itself costs per task: a no-op task through a real prefork worker on Redis.

    python benchmarks/celery_floor.py [--tasks 3000] [--concurrency 2]

Starts a private redis-server and ``celery worker -c N`` (prefork, acks late,
prefetch 1, JSON: the settings protean-celery runs with), publishes ``--tasks``
no-op tasks carrying a payload the size of an orders-saga message, and times
until the queue is drained and nothing is unacknowledged. Prints tasks/s and
the CPU milliseconds per task of the worker (main process and children) and of
Redis. That is the floor a saga pays per handler invocation for running each
invocation as one Celery task, before any of protean-celery's or Protean's work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protean_celery.testing.processes import WorkerProcess, children_of  # noqa: E402
from protean_celery.testing.servers import RedisServer  # noqa: E402

#: About the size of an orders-saga task payload (a Protean message dict).
PAYLOAD = {"data": {"order_id": "order-00001-abcdef", "amount": 10.0, "sku": "sku-1"},
           "metadata": {"headers": {"id": "x" * 36, "type": "Orders.OrderPlaced.v1", "stream": "orders::order-1"},
                        "domain": {"kind": "EVENT", "correlation_id": "y" * 32, "stream_category": "orders::order"},
                        "envelope": {"specversion": "1.0", "checksum": "z" * 64}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    with RedisServer() as redis:
        env = {"CELERY_BROKER_URL": redis.url}
        # -l info, as the saga benchmarks run their workers: Celery logs each task received and succeeded.
        worker = WorkerProcess("benchmarks.noop_app", concurrency=args.concurrency, env=env, cwd=ROOT).start()
        try:
            _run(args, redis, worker)
        finally:
            worker.stop()


def _run(args: argparse.Namespace, redis: RedisServer, worker: WorkerProcess) -> None:
    import redis as redis_client

    from benchmarks.noop_app import app

    app.conf.broker_url = redis.url
    client = redis_client.Redis.from_url(redis.url)
    cpu_before = _cpu(worker.pid) + _cpu(redis.process.pid)
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for _ in range(args.tasks):
            app.send_task("noop", args=(PAYLOAD,), producer=producer)
    while client.llen("celery") or client.hlen("unacked"):
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    worker_cpu = _cpu(worker.pid)
    redis_cpu = _cpu(redis.process.pid)
    spent = worker_cpu + redis_cpu - cpu_before
    print(f"{args.tasks} no-op tasks, worker -c {args.concurrency}: {args.tasks / elapsed:.0f} tasks/s; "
          f"{spent / args.tasks * 1000:.2f} ms CPU per task "
          f"(worker {worker_cpu:.1f} s, redis {redis_cpu:.1f} s in all)")


def _cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children that are alive now."""
    import os

    total = 0.0
    for each in [pid, *children_of(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


if __name__ == "__main__":
    main()
