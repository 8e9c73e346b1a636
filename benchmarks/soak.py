"""Soak: the orders saga at a steady rate for a long time; throughput, memory and tables must stay flat.

    python benchmarks/soak.py [--minutes 30] [--rate 5 | --rate 0] [--window 60] [--warmup MINUTES]
                              [--measure 100] [--share 0.5] [--embedded] [--concurrency 2] [--retention 120]
                              [--json out.json]

Starts a private redis-server and PostgreSQL on loopback (``--embedded``: the
embedded default's SQLite files instead of PostgreSQL), then ``celery worker -c N``
and ``celery beat`` for the orders example with maintenance on a short retention
(``benchmarks/soak_app.py``). Places orders at a steady ``--rate`` per second
(``--rate 0``: first measure the maximum with a burst of ``--measure`` orders and
use ``--share`` of it, default half) for ``--minutes``. Every ``--window`` seconds it prints sagas ended per
second, the worker's pool children's RSS, Redis ``used_memory``, the row counts
of the inbox, redelivery ledger, outbox and dead-letter tables, and the load
average (other work on the machine shows there, not as decay). Then it waits
for the last sagas and prints a verdict (``benchmarks/soak_verdict.py``):
exit 0 when every rule holds, 1 otherwise. Every process it starts is stopped.

A 2-minute version runs as ``pytest -m soak`` (``tests/integration/test_soak.py``);
the default test run and CI leave it out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.soak_probe import Probe, Sample  # noqa: E402
from benchmarks.soak_verdict import Check, Limits, header, judge, load_note, row  # noqa: E402
from protean_celery.testing.processes import BeatProcess, WorkerProcess  # noqa: E402
from protean_celery.testing.servers import PostgresServer, RedisServer  # noqa: E402

APP = "benchmarks.soak_app"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logs = Path(tempfile.mkdtemp(prefix="soak-"))
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer())
        env = {"CELERY_BROKER_URL": redis.url, "PROTEAN_NO_AUTO_LOGGING": "1",
               "SOAK_RETENTION_SECONDS": str(args.retention), "SOAK_MAINTENANCE_SECONDS": str(args.maintenance)}
        if args.embedded:
            env["PROTEAN_CELERY_STATE"] = str(logs / "state")
            (logs / "state").mkdir()
        else:
            postgres = stack.enter_context(PostgresServer())
            env.update(PROTEAN_ENV="production", DATABASE_URL=postgres.create_database("soak"))
        os.environ.update(env)
        logging.getLogger("protean").setLevel(logging.ERROR)  # slow-query warnings would break up the table
        from benchmarks.soak_app import app
        from protean_celery import storage

        storage.setup(app.domain, app.runtime.state)
        worker = WorkerProcess(APP, args.concurrency, env=env, cwd=ROOT, log_path=logs / "worker.log")
        beat = BeatProcess(APP, env=env, cwd=ROOT, log_path=logs / "beat.log")
        for process in (worker, beat):
            stack.callback(process.stop)
            process.start(timeout=120)
        probe = Probe(app, worker, redis.url)
        rate = args.rate or _measure(app, probe, args.measure) * args.share
        print(f"soak: {args.minutes:g} min at {rate:.2f} orders/s, -c {args.concurrency}, "
              f"{'embedded (SQLite)' if args.embedded else 'PostgreSQL'}, retention {args.retention:g} s, "
              f"maintenance every {args.maintenance:g} s, window {args.window:g} s, warm-up {args.warmup:g} min; "
              f"logs in {logs}", flush=True)
        samples, unfinished, failure = Soak(app, probe, rate, args).run()
    limits = Limits(warmup=args.warmup * 60, settle=args.retention + 2 * args.maintenance)
    checks = judge(samples, limits, unfinished)
    if failure:
        checks.append(Check("placing", False, failure))
    print()
    print("\n".join(f"{'PASS' if c.ok else 'FAIL'}  {c.name:<18} {c.detail}" for c in checks))
    note = load_note(samples, limits)
    if note:
        print(note)
    ok = all(check.ok for check in checks)
    print(f"verdict: {'PASS' if ok else 'FAIL'}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rate": rate, "ok": ok, "samples": [asdict(s) for s in samples],
                                               "checks": [asdict(c) for c in checks]}, indent=2))
    return 0 if ok else 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30, help="minutes of steady load (30)")
    parser.add_argument("--rate", type=float, default=5.0,
                        help="orders placed per second (5; 0: half the maximum a burst of --measure orders reaches)")
    parser.add_argument("--measure", type=int, default=100, help="orders in the burst that measures the maximum (100)")
    parser.add_argument("--share", type=float, default=0.5, help="with --rate 0: the share of that maximum (0.5)")
    parser.add_argument("--window", type=float, default=60, help="seconds between readings (60)")
    parser.add_argument("--warmup", type=float, help="minutes left out of the verdict (default: a sixth, >= 1)")
    parser.add_argument("--embedded", action="store_true", help="SQLite files (the embedded default), not PostgreSQL")
    parser.add_argument("--concurrency", "-c", type=int, default=2, help="worker pool children (2)")
    parser.add_argument("--retention", type=float, default=120,
                        help="seconds inbox markers, published outbox rows and dead letters are kept (120, > 60)")
    parser.add_argument("--maintenance", type=float, default=10, help="seconds between maintenance ticks (10)")
    parser.add_argument("--drain", type=float, default=120, help="seconds to wait for the last sagas (120)")
    parser.add_argument("--json", help="also write the samples and the verdict to this file")
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = max(args.minutes / 6, 1.0)
    if args.retention <= 60:
        parser.error("--retention must exceed the 60 s visibility timeout")
    return args


def _measure(app: Any, probe: Probe, orders: int) -> float:
    """The sagas/s of a burst of ``orders`` placed at once."""
    before = probe.ended()
    started = time.monotonic()
    placer = Placer(app, rate=0, seed=1)
    for _ in range(orders):
        placer.place_one()
    while probe.ended() - before < orders and time.monotonic() - started < 600:
        time.sleep(0.5)
    maximum = (probe.ended() - before) / (time.monotonic() - started)
    print(f"soak: measured {maximum:.2f} sagas/s with {orders} orders at once", flush=True)
    return maximum


class Placer(threading.Thread):
    """Places orders on a fixed schedule of ``rate`` per second until stopped (about 10% declined).

    A placement that fails is tried again for up to a minute; after that the
    placer stops and keeps the error in ``failure``.
    """

    def __init__(self, app: Any, rate: float, seed: int = 42) -> None:
        super().__init__(name="placer", daemon=True)
        self.app = app
        self.rate = rate
        self.placed = 0
        self.failure: str | None = None
        self.stopping = threading.Event()
        self._rng = random.Random(seed)

    def run(self) -> None:
        due = time.monotonic()
        with self.app.domain.domain_context():
            while not self.stopping.is_set() and self.failure is None:
                self.stopping.wait(max(due - time.monotonic(), 0))
                if not self.stopping.is_set():
                    self.place_one()
                    due += 1 / self.rate

    def place_one(self) -> None:
        from workers.orders.domain import PlaceOrder

        number = self.placed
        with self.app.domain.domain_context():
            command = PlaceOrder(order_id=f"soak-{number:06d}-{uuid.uuid4().hex[:6]}", customer=f"c{number % 13}",
                                 amount=5.0 + number % 100, sku=f"sku-{number % 7}", quantity=1 + number % 2,
                                 declined=self._rng.random() < 0.1)
        deadline = time.monotonic() + 60
        while True:
            try:
                with self.app.domain.domain_context():
                    self.app.process(command)
                self.placed += 1
                return
            except Exception as exc:  # a busy database: try again for a while, then stop the run
                if time.monotonic() > deadline:
                    self.failure = f"placing {command.order_id} failed for a minute: {exc!r}"
                    return
                time.sleep(0.5)


class Soak:
    """The steady load and the readings of one run."""

    def __init__(self, app: Any, probe: Probe, rate: float, args: argparse.Namespace) -> None:
        self.probe = probe
        self.args = args
        self.placer = Placer(app, rate)

    def run(self) -> tuple[list[Sample], int, str | None]:
        """Load for ``--minutes``, reading every ``--window``; returns the samples, sagas unfinished, a failure."""
        base = self.probe.ended()
        samples: list[Sample] = []
        started = time.monotonic()
        self.placer.start()
        print(header(), flush=True)
        try:
            while len(samples) * self.args.window < self.args.minutes * 60 and self.placer.failure is None:
                time.sleep(max(started + (len(samples) + 1) * self.args.window - time.monotonic(), 0))
                sample = self.probe.sample(time.monotonic() - started, self.placer.placed,
                                           samples[-1] if samples else None, base)
                samples.append(sample)
                print(row(sample), flush=True)
        finally:
            self.placer.stopping.set()
            self.placer.join(timeout=120)
        deadline = time.monotonic() + self.args.drain
        while self.probe.ended() - base < self.placer.placed and time.monotonic() < deadline:
            time.sleep(1)
        unfinished = self.placer.placed - (self.probe.ended() - base)
        return samples, max(unfinished, 0), self.placer.failure


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every process the soak started is stopped", file=sys.stderr)
        sys.exit(130)
