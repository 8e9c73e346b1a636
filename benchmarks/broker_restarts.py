"""Broker restarts: does one `celery worker` keep consuming through many Redis kill -9s?

    python benchmarks/broker_restarts.py [--rounds 60] [--seed 1]

Starts a durable redis-server (append-only file, fsync always) and one worker of the
orders example on the embedded default (SQLite state in a temporary directory). Each
round `kill -9`s redis-server and restarts it after up to 1.5 s, in 40% of the rounds
twice in quick succession, then sends a probe (a message of the wrong shape, which
the worker must dead-letter) and waits up to 40 s for it to reach the dead-letter
store. Prints one line per round and exits 1 when a probe was not consumed or the
worker main process died (Kombu can raise an unrecoverable ``AttributeError`` while
Celery closes the lost connection; see ``protean_celery/worker/connection.py``).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protean_celery.testing.processes import WorkerProcess  # noqa: E402
from protean_celery.testing.servers import RedisServer  # noqa: E402

APP = "tests.chaos.chaos_app"
PROBE_TASK = "protean.orders.commands.Order"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    state = Path(tempfile.mkdtemp(prefix="broker-restarts-"))
    started = time.monotonic()
    with RedisServer(persistent=True) as redis:
        env = {"PROTEAN_CELERY_STATE": str(state), "CELERY_BROKER_URL": redis.url, "PROTEAN_NO_AUTO_LOGGING": "1"}
        os.environ.update(env)
        from protean_celery import storage
        from tests.chaos.chaos_app import app

        storage.setup(app.domain, app.runtime.state)
        route = app.topology.route(PROBE_TASK)
        worker = WorkerProcess(APP, 2, env=env, cwd=ROOT, log_path=state / "worker.log")
        worker.start()
        print(f"broker restarts: {args.rounds} rounds, one worker -c 2, redis; logs in {state}", flush=True)
        consumed = 0
        try:
            for number in range(args.rounds):
                kills = 2 if rng.random() < 0.4 else 1
                for _ in range(kills):
                    redis.kill()
                    time.sleep(rng.random() * 1.5)
                    redis.restart()
                before = len(app.runtime.dead_letters.list())
                _send(app, route, number)
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline and len(app.runtime.dead_letters.list()) <= before:
                    if worker.process is not None and worker.process.poll() is not None:
                        break
                    time.sleep(0.2)
                alive = worker.process is not None and worker.process.poll() is None
                ok = alive and len(app.runtime.dead_letters.list()) > before
                consumed += ok
                print(f"round {number + 1}: redis killed x{kills}, probe {'consumed' if ok else 'NOT consumed'}"
                      f"{'' if alive else ', worker main process DIED'}", flush=True)
                if not ok:
                    print(worker.tail(60))
                    break
        finally:
            log = worker.log()
            worker.stop()
    unrecoverable = log.count("Unrecoverable error")
    survived = consumed == args.rounds and unrecoverable == 0
    print()
    print(f"rounds                 {args.rounds}")
    print(f"probes consumed        {consumed}")
    print(f"unrecoverable errors   {unrecoverable}")
    print(f"lost connection closes {log.count('closing the lost broker connection failed')}  (logged, not fatal)")
    print(f"wall time              {time.monotonic() - started:.0f} s")
    print(f"result                 {'OK' if survived else 'FAILED'}")
    return 0 if survived else 1


def _send(app: object, route: object, number: int) -> None:
    for _attempt in range(60):  # the broker may still be loading its append-only file
        try:
            app.send_task(PROBE_TASK, args=({"probe": number},), task_id=f"probe-{number}",  # type: ignore[attr-defined]
                          exchange=route.exchange, routing_key="orders::order:command",  # type: ignore[attr-defined]
                          declare=[route.queue])  # type: ignore[attr-defined]
            return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError("the probe could not be sent for 30 s")


if __name__ == "__main__":
    sys.exit(main())
