"""Ordered lanes at scale: inversions seen with and without lanes in one real-worker run.

    python benchmarks/ordering.py [--keys 500] [--rounds 4] [--burst 5] [--counted 500] [--concurrency 4]

Starts a private redis-server and PostgreSQL, queues ``keys × rounds × burst``
``Bumped`` events (bursts of ``burst`` per account, round after round) and
``counted`` ``Counted`` events through the outbox (``tests/integration/ordering_app.py``:
each Unit of Work published right after its commit; with ``ORDERING_RELAY=backlog``,
by one relay run at the end, which claims the outbox in no particular order), then
runs one ``celery worker -c concurrency`` until both handlers recorded every bump. Prints, per handler, the
events recorded, the inversions (pairs of one account's bumps seen in the opposite
of their commit order) and duplicates; the tallies of the ordered and unordered
projectors; the deferrals; and the wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protean_celery.testing.processes import WorkerProcess  # noqa: E402
from protean_celery.testing.servers import PostgresServer, RedisServer  # noqa: E402
from tests.integration import ordering_ops as ops  # noqa: E402

APP = "tests.integration.ordering_app"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--counted", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    events = args.keys * args.rounds * args.burst
    state = Path(tempfile.mkdtemp(prefix="ordering-"))
    with RedisServer() as redis, PostgresServer() as postgres:
        url = postgres.create_database("ordering_bench")
        env = {**os.environ, "CELERY_BROKER_URL": redis.url, "PROTEAN_CELERY_STATE": str(state),
               "ORDERING_DATABASE_URL": url, "PROTEAN_NO_AUTO_LOGGING": "1"}
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", APP, "queue", str(args.keys), str(args.rounds), str(args.burst),
                        str(args.counted)], cwd=ROOT, env=env, check=True, timeout=3600)
        queued = time.monotonic() - started
        print(f"queued {events} Bumped and {args.counted} Counted events in {queued:.0f} s", flush=True)
        started = time.monotonic()
        log = state / "worker.log"
        with WorkerProcess(APP, args.concurrency, env=env, cwd=ROOT, log_path=log):
            deadline = time.monotonic() + 3600
            while ops.seen(url) != {"InOrder": events, "AnyOrder": events} or ops.tallies(url, "tally") < args.counted:
                if time.monotonic() > deadline:
                    print("not done within an hour", ops.seen(url))
                    return 1
                time.sleep(1)
            handled = time.monotonic() - started
        deferred = len(re.findall(r"succeeded in [0-9.]+s: 'deferred'", log.read_text(errors="replace")))
        print(f"handled in {handled:.0f} s by one worker -c {args.concurrency}; {deferred} deferrals")
        for handler in ("InOrder", "AnyOrder"):
            print(f"{handler:<10} events {ops.seen(url)[handler]:>6}  inversions {ops.inversions(url, handler):>6}  "
                  f"duplicates {ops.duplicates(url, handler)}")
        print(f"tallies: ordered {ops.tallies(url, 'tally')} / {args.counted}, "
              f"unordered {ops.tallies(url, 'loose_tally')} / {args.counted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
