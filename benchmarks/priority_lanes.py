"""Priority lanes: how long an interactive message waits behind a bulk backlog, with and without lanes.

    python benchmarks/priority_lanes.py [--backlog 5000] [--probes 20] [--gap 0.25] [--concurrency 2]

For each run (lanes off, then on) it starts a fresh state directory on one private
redis-server, queues ``--backlog`` ``ItemRecorded`` events at ``Priority.BULK``
through the outbox and the relay (``tests/integration/lanes_app.py``), starts one
``celery worker``, waits until it is handling the backlog, then sends ``--probes``
events at ``Priority.NORMAL`` one at a time, ``--gap`` seconds apart (without
waiting for each to be handled). A probe's latency runs from just before its Unit
of Work commits to the moment ``Tally`` handles it (both wall-clock, one machine),
so it includes the relay. Prints p50, p90 and max per run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protean_celery.testing.processes import WorkerProcess  # noqa: E402
from protean_celery.testing.servers import RedisServer  # noqa: E402

APP = "tests.integration.lanes_app"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.25)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--run", choices=["0", "1"], help=argparse.SUPPRESS)  # one run, in a child process
    args = parser.parse_args(argv)
    if args.run is not None:
        print(json.dumps(_run(args)))
        return 0
    print(f"priority lanes: {args.backlog} BULK events queued, then {args.probes} NORMAL ones {args.gap} s apart; "
          f"one worker -c {args.concurrency}, redis", flush=True)
    results = {}
    with RedisServer() as redis:
        for lanes in ("0", "1"):
            state = Path(tempfile.mkdtemp(prefix=f"priority-lanes-{lanes}-"))
            env = {**os.environ, "CELERY_BROKER_URL": redis.url, "PROTEAN_CELERY_STATE": str(state), "LANES": lanes,
                   "PROTEAN_NO_AUTO_LOGGING": "1"}
            import redis as redis_client

            redis_client.Redis.from_url(redis.url).flushdb()
            child = subprocess.run(
                [sys.executable, __file__, "--run", lanes, "--backlog", str(args.backlog), "--probes",
                 str(args.probes), "--gap", str(args.gap), "--concurrency", str(args.concurrency)],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
            )
            if child.returncode != 0:
                print(child.stderr[-4000:])
                return 1
            results[lanes] = json.loads(child.stdout.strip().splitlines()[-1])
    print()
    print(f"{'run':<12}{'p50 (s)':>10}{'p90 (s)':>10}{'max (s)':>10}{'backlog left':>14}{'queueing (s)':>14}")
    for lanes, name in (("0", "no lanes"), ("1", "lanes")):
        r = results[lanes]
        print(f"{name:<12}{r['p50']:>10.3f}{r['p90']:>10.3f}{r['max']:>10.3f}{r['backlog_left']:>14}"
              f"{r['queueing']:>14.1f}")
    return 0


def _run(args: argparse.Namespace) -> dict[str, float]:
    """One run, in this process (its environment chose lanes on or off)."""
    from protean.utils.processing import Priority

    from tests.integration import lanes_ops

    lanes_ops.setup()
    started = time.monotonic()
    lanes_ops.queue([f"bulk-{n}" for n in range(args.backlog)], Priority.BULK)
    queueing = time.monotonic() - started
    state = Path(os.environ["PROTEAN_CELERY_STATE"])
    with WorkerProcess(APP, args.concurrency, env=dict(os.environ), cwd=ROOT, log_path=state / "worker.log"):
        _until(lambda: len(lanes_ops.handled()) >= 20, 120)
        sent = {}
        for n in range(args.probes):
            sent[f"probe-{n}"] = time.time()
            lanes_ops.queue([f"probe-{n}"], Priority.NORMAL)
            time.sleep(args.gap)
        backlog_left = args.backlog - sum(1 for item, _ in lanes_ops.handled() if item.startswith("bulk-"))
        _until(lambda: sum(1 for item, _ in lanes_ops.handled() if item.startswith("probe-")) == args.probes, 1500)
    at = dict(lanes_ops.handled())
    latencies = sorted(at[probe] - when for probe, when in sent.items())
    return {
        "p50": statistics.median(latencies),
        "p90": latencies[int(0.9 * (len(latencies) - 1))],
        "max": latencies[-1],
        "backlog_left": backlog_left,
        "queueing": queueing,
    }


def _until(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {timeout} s")
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
